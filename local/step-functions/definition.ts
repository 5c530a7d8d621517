/**
 * From a synthesized CloudFormation template to the ASL definition Step Functions would run:
 * the state machine's `DefinitionString` (or `Definition`) with its intrinsics and
 * `DefinitionSubstitutions` resolved the way CloudFormation would, given what the caller says
 * each `Ref` / `Fn::GetAtt` stands for locally.
 */
import type { StateMachineDefinition } from 'aws-local-stepfunctions';

/** An Amazon States Language definition (JSONPath), as aws-local-stepfunctions types it. */
export type AslDefinition = StateMachineDefinition;

/** One state of a definition; the library's union of state types. */
export type AslState = AslDefinition['States'][string];

export interface IntrinsicResolver {
  /** Value of `{ Ref: logicalId }` for a resource or parameter of the template. */
  ref: (logicalId: string) => string;
  /** Value of `{ 'Fn::GetAtt': [logicalId, attr] }`. */
  getAtt: (logicalId: string, attr: string) => string;
  /** `AWS::Partition`. @default 'aws' */
  partition?: string;
  /** `AWS::Region`. @default 'us-east-1' */
  region?: string;
  /** `AWS::AccountId`. @default '000000000000' */
  accountId?: string;
  /** `AWS::URLSuffix`. @default 'amazonaws.com' */
  urlSuffix?: string;
  /** `AWS::StackName`. @default 'local' */
  stackName?: string;
}

export interface StateMachineResource {
  logicalId: string;
  /** The construct path CDK records in `Metadata['aws:cdk:path']`, when present. */
  cdkPath?: string;
}

interface CfnResource {
  Type?: string;
  Properties?: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
}

interface CfnTemplate {
  Resources?: Record<string, CfnResource>;
  Parameters?: Record<string, unknown>;
}

const STATE_MACHINE_TYPE = 'AWS::StepFunctions::StateMachine';

/** The state machines a template declares, with their CDK construct paths. */
export function findStateMachines(template: object): StateMachineResource[] {
  const resources = (template as CfnTemplate).Resources ?? {};
  return Object.entries(resources)
    .filter(([, r]) => r?.Type === STATE_MACHINE_TYPE)
    .map(([logicalId, r]) => {
      const cdkPath = r.Metadata?.['aws:cdk:path'];
      return typeof cdkPath === 'string' ? { logicalId, cdkPath } : { logicalId };
    });
}

/**
 * The ASL of the state machine `stateMachineLogicalId` (its logical id, or its CDK construct path
 * as recorded in `aws:cdk:path`) with every intrinsic resolved. Throws, naming what and where, on
 * an intrinsic it does not know, a `Ref`/`Fn::GetAtt` to something the template does not declare,
 * or a result that is not a JSON state machine.
 */
export function resolveDefinition(
  template: object,
  stateMachineLogicalId: string,
  resolve: IntrinsicResolver,
): AslDefinition {
  const tpl = template as CfnTemplate;
  const machines = findStateMachines(template);
  const found =
    machines.find((m) => m.logicalId === stateMachineLogicalId) ??
    machines.find((m) => m.cdkPath === stateMachineLogicalId);
  if (!found) {
    const known = machines.map((m) => (m.cdkPath ? `${m.logicalId} (${m.cdkPath})` : m.logicalId));
    throw new Error(
      `No ${STATE_MACHINE_TYPE} "${stateMachineLogicalId}" in the template; it declares: ${
        known.length ? known.join(', ') : 'none'
      }`,
    );
  }
  const where = `Resources.${found.logicalId}.Properties`;
  const props = tpl.Resources?.[found.logicalId]?.Properties ?? {};
  const resolver = new IntrinsicEvaluator(tpl, resolve);

  let text: string;
  if (props.DefinitionString !== undefined) {
    text = resolver.toText(props.DefinitionString, `${where}.DefinitionString`);
  } else if (props.Definition !== undefined) {
    text = JSON.stringify(resolver.resolve(props.Definition, `${where}.Definition`));
  } else if (props.DefinitionS3Location !== undefined) {
    throw new Error(
      `${where}: DefinitionS3Location is not supported locally; synthesize the definition inline`,
    );
  } else {
    throw new Error(`${where}: the state machine has neither DefinitionString nor Definition`);
  }

  const substitutions = props.DefinitionSubstitutions;
  if (substitutions !== undefined) {
    if (!isPlainObject(substitutions))
      throw new Error(`${where}.DefinitionSubstitutions: expected an object`);
    for (const [key, value] of Object.entries(substitutions)) {
      const replacement = resolver.toText(value, `${where}.DefinitionSubstitutions.${key}`);
      text = text.split(`\${${key}}`).join(replacement);
    }
  }

  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(
      `${where}: the resolved definition is not JSON (${(err as Error).message}); it begins: ${text.slice(0, 200)}`,
    );
  }
  if (!isPlainObject(parsed) || typeof parsed.StartAt !== 'string' || !isPlainObject(parsed.States)) {
    throw new Error(`${where}: the resolved definition has no StartAt/States`);
  }
  return parsed as unknown as AslDefinition;
}

/**
 * Visits every state of a definition, including those inside Map (`ItemProcessor` / `Iterator`)
 * and Parallel (`Branches`) states; `path` names the enclosing states.
 */
export function walkStates(
  definition: Pick<AslDefinition, 'States'>,
  visit: (name: string, state: AslState, path: string[]) => void,
  path: string[] = [],
): void {
  for (const [name, state] of Object.entries(definition.States)) {
    visit(name, state, path);
    const nested = state as {
      ItemProcessor?: AslDefinition;
      Iterator?: AslDefinition;
      Branches?: AslDefinition[];
    };
    const processor = nested.ItemProcessor ?? nested.Iterator;
    if (processor?.States) walkStates(processor, visit, [...path, name]);
    nested.Branches?.forEach((branch, i) => {
      if (branch?.States) walkStates(branch, visit, [...path, `${name}[${i}]`]);
    });
  }
}

const PSEUDO_DEFAULTS = {
  partition: 'aws',
  region: 'us-east-1',
  accountId: '000000000000',
  urlSuffix: 'amazonaws.com',
  stackName: 'local',
};

class IntrinsicEvaluator {
  constructor(
    private readonly template: CfnTemplate,
    private readonly resolver: IntrinsicResolver,
  ) {}

  /** A value that must end up a string (a definition, a substitution, a Join part). */
  toText(node: unknown, where: string): string {
    const value = this.resolve(node, where);
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    throw new Error(`${where}: expected a string, got ${JSON.stringify(value)}`);
  }

  /** Resolves intrinsics anywhere in a value. */
  resolve(node: unknown, where: string): unknown {
    if (Array.isArray(node)) return node.map((item, i) => this.resolve(item, `${where}[${i}]`));
    if (!isPlainObject(node)) return node;
    const keys = Object.keys(node);
    if (keys.length === 1 && (keys[0] === 'Ref' || keys[0]?.startsWith('Fn::'))) {
      return this.intrinsic(keys[0], node[keys[0]], `${where}.${keys[0]}`);
    }
    return Object.fromEntries(keys.map((k) => [k, this.resolve(node[k], `${where}.${k}`)]));
  }

  private intrinsic(name: string, arg: unknown, where: string): unknown {
    switch (name) {
      case 'Ref':
        if (typeof arg !== 'string') throw new Error(`${where}: Ref takes a logical id`);
        return this.ref(arg, where);
      case 'Fn::GetAtt': {
        const [id, attr] = typeof arg === 'string' ? splitOnce(arg, '.') : Array.isArray(arg) ? arg : [];
        if (typeof id !== 'string' || typeof attr !== 'string') {
          throw new Error(`${where}: Fn::GetAtt takes [logicalId, attribute]`);
        }
        return this.getAtt(id, attr, where);
      }
      case 'Fn::Join': {
        if (!Array.isArray(arg) || typeof arg[0] !== 'string' || !Array.isArray(arg[1])) {
          throw new Error(`${where}: Fn::Join takes [delimiter, [values]]`);
        }
        const list = this.resolve(arg[1], `${where}[1]`);
        if (!Array.isArray(list)) throw new Error(`${where}: Fn::Join values are not a list`);
        return list.map((part, i) => this.toText(part, `${where}[1][${i}]`)).join(arg[0]);
      }
      case 'Fn::Sub':
        return this.sub(arg, where);
      case 'Fn::Select': {
        if (!Array.isArray(arg) || arg.length !== 2)
          throw new Error(`${where}: Fn::Select takes [index, list]`);
        const index = Number(this.resolve(arg[0], `${where}[0]`));
        const list = this.resolve(arg[1], `${where}[1]`);
        if (!Array.isArray(list) || !Number.isInteger(index) || index < 0 || index >= list.length) {
          throw new Error(`${where}: Fn::Select index ${index} is out of range`);
        }
        return list[index];
      }
      case 'Fn::Split': {
        if (!Array.isArray(arg) || typeof arg[0] !== 'string') {
          throw new Error(`${where}: Fn::Split takes [delimiter, string]`);
        }
        return this.toText(arg[1], `${where}[1]`).split(arg[0]);
      }
      default:
        throw new Error(
          `${where}: the intrinsic ${name} is not supported locally (supported: Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select, Fn::Split)`,
        );
    }
  }

  private ref(id: string, where: string): string {
    const r = this.resolver;
    switch (id) {
      case 'AWS::Partition':
        return r.partition ?? PSEUDO_DEFAULTS.partition;
      case 'AWS::Region':
        return r.region ?? PSEUDO_DEFAULTS.region;
      case 'AWS::AccountId':
        return r.accountId ?? PSEUDO_DEFAULTS.accountId;
      case 'AWS::URLSuffix':
        return r.urlSuffix ?? PSEUDO_DEFAULTS.urlSuffix;
      case 'AWS::StackName':
        return r.stackName ?? PSEUDO_DEFAULTS.stackName;
    }
    if (id.startsWith('AWS::'))
      throw new Error(`${where}: the pseudo parameter ${id} is not supported locally`);
    const declared =
      Object.hasOwn(this.template.Resources ?? {}, id) || Object.hasOwn(this.template.Parameters ?? {}, id);
    if (!declared) throw new Error(`${where}: Ref to "${id}", which the template does not declare`);
    return checkString(r.ref(id), `${where}: ref("${id}")`);
  }

  private getAtt(id: string, attr: string, where: string): string {
    if (!Object.hasOwn(this.template.Resources ?? {}, id)) {
      throw new Error(`${where}: Fn::GetAtt of "${id}", which the template does not declare`);
    }
    return checkString(this.resolver.getAtt(id, attr), `${where}: getAtt("${id}", "${attr}")`);
  }

  private sub(arg: unknown, where: string): string {
    let text: unknown = arg;
    let vars: Record<string, unknown> = {};
    if (Array.isArray(arg)) {
      [text] = arg;
      if (arg[1] !== undefined) {
        if (!isPlainObject(arg[1])) throw new Error(`${where}: Fn::Sub variables must be an object`);
        vars = arg[1];
      }
    }
    if (typeof text !== 'string') throw new Error(`${where}: Fn::Sub takes a string or [string, variables]`);
    return text.replace(/\$\{([^}]*)\}/g, (whole, expr: string) => {
      if (expr.startsWith('!')) return `\${${expr.slice(1)}}`;
      const name = expr.trim();
      if (Object.hasOwn(vars, name)) return this.toText(vars[name], `${where}.${name}`);
      if (name.startsWith('AWS::')) return this.ref(name, where);
      const dot = name.indexOf('.');
      if (dot > 0) return this.getAtt(name.slice(0, dot), name.slice(dot + 1), where);
      if (name) return this.ref(name, where);
      throw new Error(`${where}: empty ${whole} in Fn::Sub`);
    });
  }
}

function checkString(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new Error(`${what} returned ${JSON.stringify(value)}, not a string`);
  return value;
}

function splitOnce(text: string, sep: string): [string, string] | [] {
  const i = text.indexOf(sep);
  return i > 0 ? [text.slice(0, i), text.slice(i + 1)] : [];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
