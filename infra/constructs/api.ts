import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { ROUTES, type RouteDefinition, type RouteName } from '../../lambdas/api/routes';
import { grantAccess, type JobResources } from '../grants';
import { acknowledge, arnFinding } from '../nag';
import { KilnFunction } from './kiln-function';

export interface ApiProps {
  readonly prefix: string;
  readonly sourceRoot: string;
  readonly resources: JobResources;
  /** Environment of every route function (names from ENV in infra/definitions.ts). */
  readonly environment: Readonly<Record<string, string>>;
  /** @default ROUTES from lambdas/api/routes.ts */
  readonly routes?: readonly RouteDefinition[];
  /** Steady-state requests per second across the API. @default 50 */
  readonly throttleRateLimit?: number;
  /** Burst of requests above the steady rate. @default 100 */
  readonly throttleBurstLimit?: number;
  /** @default Duration.seconds(10) */
  readonly functionTimeout?: Duration;
  /** Retention of access logs and function logs. @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

const DEFAULTS = {
  throttleRateLimit: 50,
  throttleBurstLimit: 100,
  functionTimeout: Duration.seconds(10),
  logRetention: logs.RetentionDays.ONE_MONTH,
} as const;

/** The HTTP API: one IAM-authorized route per row of ROUTES, each served by its own function. */
export class Api extends Construct {
  readonly httpApi: apigwv2.HttpApi;
  readonly stage: apigwv2.HttpStage;
  readonly accessLogs: logs.LogGroup;
  readonly functions: ReadonlyMap<RouteName, KilnFunction>;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    const logRetention = props.logRetention ?? DEFAULTS.logRetention;

    this.httpApi = new apigwv2.HttpApi(this, 'HttpApi', {
      apiName: `${props.prefix}-api`,
      description: 'Kiln: submit, follow and cancel image builds (SigV4-signed requests only)',
      createDefaultStage: false,
    });
    this.accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      retention: logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stage = this.httpApi.addStage('DefaultStage', {
      stageName: '$default',
      autoDeploy: true,
      throttle: {
        rateLimit: props.throttleRateLimit ?? DEFAULTS.throttleRateLimit,
        burstLimit: props.throttleBurstLimit ?? DEFAULTS.throttleBurstLimit,
      },
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(this.accessLogs),
        // The caller's ARN is the job owner, so a request in these logs can be tied to its jobs.
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            requestTime: '$context.requestTime',
            caller: '$context.identity.userArn',
            sourceIp: '$context.identity.sourceIp',
            routeKey: '$context.routeKey',
            path: '$context.path',
            status: '$context.status',
            responseLength: '$context.responseLength',
            responseLatencyMs: '$context.responseLatency',
            integrationLatencyMs: '$context.integrationLatency',
            integrationError: '$context.integrationErrorMessage',
            authorizerError: '$context.authorizer.error',
          }),
        ),
      },
    });

    const functions = new Map<RouteName, KilnFunction>();
    const authorizer = new HttpIamAuthorizer();
    for (const route of props.routes ?? ROUTES) {
      const fn = new KilnFunction(this, route.name, {
        entry: route.entry,
        sourceRoot: props.sourceRoot,
        description: `${route.method} ${route.path}`,
        environment: props.environment,
        timeout: props.functionTimeout ?? DEFAULTS.functionTimeout,
        logRetention,
      });
      grantAccess(fn.role, route.access, props.resources);
      if (route.access.bucket === 'read') {
        acknowledge(
          fn.role,
          `AwsSolutions-IAM5[${arnFinding(props.resources.artifacts.bucket, '/artifacts/*')}]`,
          'Artifact keys are artifacts/<jobId>/..., one per job; the handler checks the caller owns the job before reading or presigning.',
        );
        acknowledge(
          fn.role,
          `AwsSolutions-IAM5[${arnFinding(props.resources.artifacts.bucket, '/logs/*')}]`,
          'Build output keys are logs/<jobId>/<attempt>/<seq>.log, one folder per job; the handler checks the caller owns the job first.',
        );
      }
      this.httpApi.addRoutes({
        path: route.path,
        methods: [apigwv2.HttpMethod[route.method]],
        integration: new HttpLambdaIntegration(`${route.name}Integration`, fn.function),
        authorizer,
      });
      functions.set(route.name, fn);
    }
    this.functions = functions;
  }

  /** The invoke URL of the `$default` stage. */
  get url(): string {
    return this.stage.url;
  }
}
