import aslValidator from 'asl-validator';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config';
import { IMPORT_SLOTS, registerStateMachineName, slotsTableName } from '../../infra/definitions';
import { CONDITION_FAILED } from '../../infra/register/workflow';
import { synthesizeRegisterDefinition } from '../../local/register';
import { type AslDefinition, resolveDefinition, walkStates } from '../../local/step-functions';
import {
  actionsOf,
  logicalIdOf,
  propOf,
  resourcesOf,
  resourcesOfType,
  type Synthesized,
  statementsOfRole,
  synthesize,
} from './synth';

let s: Synthesized;
let definition: AslDefinition;
const config = parseConfig({});

beforeAll(() => {
  s = synthesize();
  const machineId = logicalIdOf(s.stack.registration.workflow.stateMachine, s);
  // The deployed definition, with CloudFormation references resolved to placeholders.
  definition = resolveDefinition(s.template.toJSON(), machineId, {
    ref: (id) => `ref-${id}`,
    getAtt: (id, attr) =>
      attr === 'Arn' ? `arn:aws:lambda:us-east-1:000000000000:function:${id}` : `${id}-${attr}`,
  });
});

/** Every state of a definition, nested Map/Parallel states included: name → type. */
function stateTypes(def: AslDefinition): Record<string, string> {
  const types: Record<string, string> = {};
  walkStates(def, (name, state) => {
    types[name] = (state as { Type: string }).Type;
  });
  return types;
}

describe('register state machine', () => {
  it('is named from the config and passes asl-validator as synthesized', () => {
    const [, machine] = resourcesOfType(s.resources, 'AWS::StepFunctions::StateMachine')[0] ?? [];
    expect(propOf<string>(machine, 'StateMachineName')).toBe(registerStateMachineName(config.prefix));
    const result = aslValidator(JSON.parse(JSON.stringify(definition)));
    expect(result.errors).toEqual([]);
    expect(result.isValid).toBe(true);
  });

  it('is the same workflow local mode runs (same states, same types)', () => {
    const local = synthesizeRegisterDefinition(config, 'us-east-1', slotsTableName(config.prefix));
    expect(stateTypes(local.definition)).toEqual(stateTypes(definition));
  });

  it('uses JSONPath only (the local interpreter ignores JSONata)', () => {
    expect(JSON.stringify(definition)).not.toContain('"QueryLanguage":"JSONata"');
    expect(JSON.stringify(definition)).not.toContain('"Assign"');
  });

  it('acquires an import slot by a conditional update capped at importConcurrency, held per execution', () => {
    const acquire = definition.States.AcquireImportSlot as {
      Parameters: Record<string, unknown>;
      Catch: unknown[];
    };
    expect(acquire.Parameters).toMatchObject({
      Key: { name: { S: IMPORT_SLOTS } },
      ConditionExpression: 'holderCount < :limit AND attribute_not_exists(#h)',
      ExpressionAttributeNames: { '#h.$': '$$.Execution.Id' },
      ExpressionAttributeValues: { ':limit': { N: String(config.importConcurrency) } },
    });
    expect(JSON.stringify(acquire.Catch)).toContain(CONDITION_FAILED);
  });

  it('releases the slot on every failure path: each Task that can fail is caught into the release', () => {
    const catchTargets = new Set<string>();
    walkStates(definition, (name, state) => {
      const st = state as { Type: string; Catch?: Array<{ ErrorEquals: string[]; Next: string }> };
      if (st.Type !== 'Task' && st.Type !== 'Map') return;
      // The counter set-up and the failure path itself end the execution if they fail; the reaper
      // returns the slot of an execution that ended without releasing it.
      if (
        [
          'EnsureSlotCounter',
          'ReleaseSlotAfterFailure',
          'RecordFailure',
          'CopyImage',
          'ReleaseImportSlot',
        ].includes(name)
      )
        return;
      const all = st.Catch?.find((c) => c.ErrorEquals.includes('States.ALL'));
      expect(all?.Next, name).toBeDefined();
      catchTargets.add(all?.Next as string);
    });
    expect([...catchTargets]).toEqual(['ReleaseSlotAfterFailure']);
  });

  it('imports with an idempotency token and registers under a name derived from the job', () => {
    const importTask = definition.States.ImportSnapshot as { Parameters: Record<string, unknown> };
    expect(importTask.Parameters['ClientToken.$']).toBe('$.clientToken');
    const register = definition.States.RegisterImage as { Parameters: Record<string, unknown> };
    expect(register.Parameters['Name.$']).toBe('$.imageName');
  });

  it('has no short timeout: the whole workflow may run a day, no Task has a timeout', () => {
    const [, machine] = resourcesOfType(s.resources, 'AWS::StepFunctions::StateMachine')[0] ?? [];
    expect(JSON.stringify(propOf(machine, 'DefinitionString'))).toContain('TimeoutSeconds\\":86400');
    walkStates(definition, (name, state) => {
      expect((state as { TimeoutSeconds?: number }).TimeoutSeconds, name).toBeUndefined();
    });
  });
});

describe('registration permissions', () => {
  it('the agent may start register executions; the sweeper may start and describe them and use the slots', () => {
    const machineRef = JSON.stringify({ Ref: logicalIdOf(s.stack.registration.workflow.stateMachine, s) });
    const agentRole = logicalIdOf(s.stack.pools[0]?.role as never, s);
    const agent = statementsOfRole(s.resources, agentRole);
    expect(
      agent.some(
        (st) => actionsOf(st).includes('states:StartExecution') && JSON.stringify(st).includes(machineRef),
      ),
    ).toBe(true);
    expect(agent.some((st) => actionsOf(st).includes('states:StopExecution'))).toBe(false);
    const sweeper = statementsOfRole(s.resources, logicalIdOf(s.stack.background.sweeper.role, s));
    const sweeperActions = sweeper.flatMap(actionsOf);
    expect(sweeperActions).toEqual(
      expect.arrayContaining(['states:StartExecution', 'states:DescribeExecution']),
    );
    const slots = JSON.stringify({ 'Fn::GetAtt': [logicalIdOf(s.stack.registration.slotsTable, s), 'Arn'] });
    expect(sweeper.some((st) => JSON.stringify(resourcesOf(st)).includes(slots))).toBe(true);
  });

  it('VM Import reads only artifacts, through a role only vmie can assume with the vmimport external id', () => {
    const roleId = logicalIdOf(s.stack.registration.importRole, s);
    const role = s.resources[roleId];
    expect(JSON.stringify(propOf(role, 'AssumeRolePolicyDocument'))).toContain('vmie.amazonaws.com');
    expect(JSON.stringify(propOf(role, 'AssumeRolePolicyDocument'))).toContain('"sts:ExternalId":"vmimport"');
    const actions = statementsOfRole(s.resources, roleId).flatMap(actionsOf).sort();
    expect(actions).toEqual(['s3:GetBucketLocation', 's3:GetObject', 's3:ListBucket']);
  });
});
