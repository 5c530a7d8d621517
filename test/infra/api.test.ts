import { beforeAll, describe, expect, it } from 'vitest';
import { KILN_LAMBDA_RUNTIME } from '../../infra/constructs/kiln-function';
import {
  QUEUE_READ_ACTIONS,
  QUEUE_SEND_ACTIONS,
  SLOTS_READ_ACTIONS,
  SLOTS_WRITE_ACTIONS,
  TABLE_ACTIONS,
} from '../../infra/grants';
import { ROUTES } from '../../lambdas/api/routes';
import {
  actionsOf,
  logicalIdOf,
  propOf,
  resourcesOf,
  resourcesOfType,
  type Statement,
  type Synthesized,
  statementsOfRole,
  synthesize,
} from './synth';

let s: Synthesized;
beforeAll(() => {
  s = synthesize();
});

function routeResource(method: string, path: string) {
  const found = resourcesOfType(s.resources, 'AWS::ApiGatewayV2::Route').find(
    ([, r]) => r.Properties?.RouteKey === `${method} ${path}`,
  );
  if (!found) throw new Error(`no route ${method} ${path}`);
  return found[1];
}

function routeStatements(name: (typeof ROUTES)[number]['name']): Statement[] {
  const fn = s.stack.api.functions.get(name);
  if (!fn) throw new Error(`no function for ${name}`);
  return statementsOfRole(s.resources, logicalIdOf(fn.role, s));
}

describe('HTTP API', () => {
  it('has exactly the routes of ROUTES, each with IAM authorization', () => {
    const routes = resourcesOfType(s.resources, 'AWS::ApiGatewayV2::Route');
    expect(routes.map(([, r]) => r.Properties?.RouteKey).sort()).toEqual(
      ROUTES.map((r) => `${r.method} ${r.path}`).sort(),
    );
    for (const [, route] of routes) expect(route.Properties?.AuthorizationType).toBe('AWS_IAM');
  });

  it('sends each route to the function built from its entry', () => {
    for (const route of ROUTES) {
      const fn = s.stack.api.functions.get(route.name);
      if (!fn) throw new Error(`no function for ${route.name}`);
      const target = JSON.stringify(routeResource(route.method, route.path).Properties?.Target);
      const integrationId = /"Ref":"([^"]+)"/.exec(target)?.[1] as string;
      const integration = s.resources[integrationId];
      expect(JSON.stringify(integration?.Properties?.IntegrationUri)).toContain(logicalIdOf(fn.function, s));
    }
  });

  it('throttles the stage and writes access logs', () => {
    s.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
      AccessLogSettings: {
        DestinationArn: { 'Fn::GetAtt': [logicalIdOf(s.stack.api.accessLogs, s), 'Arn'] },
      },
    });
    const stage = resourcesOfType(s.resources, 'AWS::ApiGatewayV2::Stage')[0]?.[1];
    const format = JSON.parse(propOf<{ Format: string }>(stage, 'AccessLogSettings').Format) as Record<
      string,
      string
    >;
    expect(format).toMatchObject({ requestId: '$context.requestId', caller: '$context.identity.userArn' });
  });
});

describe('API functions', () => {
  it('run on arm64 with the current Node.js runtime and source maps', () => {
    for (const [name, fn] of s.stack.api.functions) {
      const props = s.resources[logicalIdOf(fn.function, s)]?.Properties;
      expect(props?.Architectures, name).toEqual(['arm64']);
      expect(props?.Runtime, name).toBe(KILN_LAMBDA_RUNTIME.name);
      expect(props?.Runtime, name).toBe('nodejs24.x');
      expect(props?.Environment, name).toMatchObject({ Variables: { NODE_OPTIONS: '--enable-source-maps' } });
    }
  });

  it('each have a role of their own', () => {
    const roles = [...s.stack.api.functions.values()].map((fn) =>
      JSON.stringify(s.resources[logicalIdOf(fn.function, s)]?.Properties?.Role),
    );
    expect(new Set(roles).size).toBe(ROUTES.length);
  });

  it.each(ROUTES.map((r) => [r.name, r] as const))('%s is granted exactly its access', (name, route) => {
    const statements = routeStatements(name);
    const actions = statements.flatMap(actionsOf);
    const jobsTable = JSON.stringify({ 'Fn::GetAtt': [logicalIdOf(s.stack.jobs.table, s), 'Arn'] });
    const slotsTable = JSON.stringify({ 'Fn::GetAtt': [logicalIdOf(s.stack.jobs.slotsTable, s), 'Arn'] });
    const on = (target: string) =>
      statements
        .filter((st) => JSON.stringify(resourcesOf(st)).includes(target))
        .flatMap(actionsOf)
        .filter((a) => a.startsWith('dynamodb:'))
        .sort();
    expect(on(jobsTable)).toEqual([...TABLE_ACTIONS[route.access.table]].sort());
    const slots =
      route.access.slots === 'write'
        ? SLOTS_WRITE_ACTIONS
        : route.access.slots === 'read'
          ? SLOTS_READ_ACTIONS
          : [];
    expect(on(slotsTable)).toEqual([...slots].sort());
    const sqs = actions.filter((a) => a.startsWith('sqs:'));
    const queueActions = { send: QUEUE_SEND_ACTIONS, read: QUEUE_READ_ACTIONS } as const;
    expect(sqs).toEqual(route.access.queues ? [...queueActions[route.access.queues]] : []);
    const s3 = actions.filter((a) => a.startsWith('s3:')).sort();
    expect(s3).toEqual(route.access.bucket === 'read' ? ['s3:GetObject', 's3:ListBucket'] : []);
    const other = actions.filter((a) => !/^(dynamodb|sqs|s3):/.test(a));
    // Writers of job transitions announce them on the bus.
    const events = route.access.table === 'write' ? ['events:PutEvents'] : [];
    expect(other.sort()).toEqual([...events, 'logs:CreateLogStream', 'logs:PutLogEvents']);
  });

  it('send only to job queues, never to dead-letter queues', () => {
    const submit = routeStatements('submitJob').find((st) => actionsOf(st).includes('sqs:SendMessage'));
    const targets = JSON.stringify(resourcesOf(submit as Statement));
    for (const q of s.stack.queues.all) {
      expect(targets).toContain(logicalIdOf(q.queue, s));
      expect(targets).not.toContain(logicalIdOf(q.deadLetterQueue, s));
    }
  });
});
