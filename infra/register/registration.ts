import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct, type IConstruct } from 'constructs';
import type { KilnConfig } from '../../core/config';
import { BACKGROUND_FUNCTIONS } from '../../lambdas/api/routes';
import { KilnFunction } from '../constructs/kiln-function';
import { registerStateMachineName } from '../definitions';
import { grantAccess, type JobResources } from '../grants';
import { acknowledge, arnFinding, logicalIdOf } from '../nag';
import { RegisterWorkflow } from './workflow';

export interface RegistrationProps {
  readonly config: KilnConfig;
  readonly sourceRoot: string;
  readonly resources: JobResources;
  readonly environment: Readonly<Record<string, string>>;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * Everything that turns an uploaded artifact into AMIs: the semaphore table, the VM Import role,
 * the two workflow Lambdas and the register state machine.
 */
export class Registration extends Construct {
  readonly slotsTable: dynamodb.ITable;
  readonly workflow: RegisterWorkflow;
  readonly recordResult: KilnFunction;
  readonly copyImage: KilnFunction;
  readonly importRole: iam.Role;

  constructor(scope: Construct, id: string, props: RegistrationProps) {
    super(scope, id);
    const { config, resources } = props;
    const stack = Stack.of(this);
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;

    this.slotsTable = resources.jobs.slotsTable;

    // VM Import reads the artifact with this role (it must trust vmie and carry the vmimport external id);
    // ImportSnapshot needs nothing else from it.
    this.importRole = new iam.Role(this, 'VmImportRole', {
      roleName: `${config.prefix}-vmimport-${stack.region}`,
      assumedBy: new iam.ServicePrincipal('vmie.amazonaws.com', {
        conditions: { StringEquals: { 'sts:ExternalId': 'vmimport' } },
      }),
      description: 'Kiln: lets EC2 VM Import read build artifacts',
    });
    this.importRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetBucketLocation', 's3:ListBucket'],
        resources: [resources.artifacts.bucket.bucketArn],
      }),
    );
    this.importRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [resources.artifacts.bucket.arnForObjects('artifacts/*')],
      }),
    );
    acknowledge(
      this.importRole,
      `AwsSolutions-IAM5[${arnFinding(resources.artifacts.bucket, '/artifacts/*')}]`,
      'VM Import reads whichever job artifact an import names; artifacts are keyed by job id.',
    );
    this.recordResult = new KilnFunction(this, 'RecordResult', {
      entry: BACKGROUND_FUNCTIONS.recordRegistration.entry,
      sourceRoot: props.sourceRoot,
      description: 'records a registration result on the job',
      environment: props.environment,
      logRetention,
    });
    grantAccess(this.recordResult.role, { table: 'write' }, resources);

    this.copyImage = new KilnFunction(this, 'CopyImage', {
      entry: BACKGROUND_FUNCTIONS.copyImage.entry,
      sourceRoot: props.sourceRoot,
      description: 'copies an AMI to another region, tags and shares it',
      environment: {},
      timeout: Duration.seconds(30),
      logRetention,
    });
    const anyRegionImages = stack.formatArn({
      service: 'ec2',
      region: '*',
      account: '',
      resource: 'image',
      resourceName: '*',
    });
    const anyRegionSnapshots = stack.formatArn({
      service: 'ec2',
      region: '*',
      account: '',
      resource: 'snapshot',
      resourceName: '*',
    });
    this.copyImage.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['ec2:CopyImage', 'ec2:CreateTags', 'ec2:ModifyImageAttribute'],
        resources: [anyRegionImages, anyRegionSnapshots],
      }),
    );
    this.copyImage.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['ec2:DescribeImages'], resources: ['*'] }),
    );
    acknowledge(
      this.copyImage.role,
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:*::image/*]',
      'A copy gets its AMI id only when it is made, in a region chosen per job.',
    );
    acknowledge(
      this.copyImage.role,
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:*::snapshot/*]',
      'A copied AMI’s snapshot is created by EC2 in the target region; its id is not known beforehand.',
    );
    acknowledge(
      this.copyImage.role,
      'AwsSolutions-IAM5[Resource::*]',
      'ec2:DescribeImages supports no resource-level permissions.',
    );

    const workflowLogs = new logs.LogGroup(this, 'WorkflowLogs', {
      retention: logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.workflow = new RegisterWorkflow(this, 'Workflow', {
      stateMachineName: registerStateMachineName(config.prefix),
      deploymentId: config.prefix,
      slotsTable: this.slotsTable,
      importConcurrency: config.importConcurrency,
      recordResult: this.recordResult.function,
      copyImage: this.copyImage.function,
      importRole: this.importRole,
      logs: workflowLogs,
    });
    this.acknowledgeWorkflowRole();
  }

  private acknowledgeWorkflowRole(): void {
    const role = this.workflow.stateMachine.role;
    const partitionRegion = 'arn:<AWS::Partition>:ec2:<AWS::Region>';
    const reasons: Array<[string, string]> = [
      [
        `Resource::${partitionRegion}:<AWS::AccountId>:import-snapshot-task/*`,
        'An import task gets its id from ImportSnapshot itself; it cannot be named in advance.',
      ],
      [
        `Resource::${partitionRegion}::image/*`,
        'The workflow registers, tags and shares AMIs whose ids EC2 assigns per job.',
      ],
      [`Resource::${partitionRegion}::snapshot/*`, 'Imported snapshots get ids from EC2 during the import.'],
      [
        'Resource::*',
        'DescribeImportSnapshotTasks and DescribeImages support no resource-level permissions.',
      ],
      [
        `${arnFinding(this.recordResult.function, ':*')}`,
        'Step Functions invokes this one function by any version or alias (the LambdaInvoke grant).',
      ],
      [
        `${arnFinding(this.copyImage.function, ':*')}`,
        'Step Functions invokes this one function by any version or alias (the LambdaInvoke grant).',
      ],
    ];
    for (const [finding, reason] of reasons) acknowledge(role, `AwsSolutions-IAM5[${finding}]`, reason);
  }

  /** Start and inspect executions (agent: start; sweeper: start and describe). */
  grantStart(grantee: iam.IGrantable): void {
    this.workflow.stateMachine.grantStartExecution(grantee);
  }

  grantRecover(grantee: iam.IGrantable & IConstruct): void {
    this.workflow.stateMachine.grantStartExecution(grantee);
    this.workflow.stateMachine.grantExecution(grantee, 'states:DescribeExecution');
    this.slotsTable.grant(grantee, 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem');
    const stateMachineName = `{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"${logicalIdOf(this.workflow.stateMachine)}"}]}]}`;
    acknowledge(
      grantee,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:${stateMachineName}:*]`,
      'Executions of the register state machine are named per job; the grant is limited to that state machine.',
    );
  }
}
