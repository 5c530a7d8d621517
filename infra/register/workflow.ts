import { Duration, Stack } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { IMPORT_SLOTS } from '../definitions';

export interface RegisterWorkflowProps {
  /** State machine name. */
  readonly stateMachineName: string;
  /** Value of the `kiln:deployment` tag on every image and snapshot this deployment makes. */
  readonly deploymentId: string;
  /** Table of counting semaphores (SLOTS_TABLE). */
  readonly slotsTable: dynamodb.ITable;
  /** Concurrent import tasks allowed in this region. */
  readonly importConcurrency: number;
  /** Marks the job SUCCEEDED with its images or FAILED with the reason (lambdas/register). */
  readonly recordResult: lambda.IFunction;
  /** Copies the AMI to another region, tags and shares the copy (lambdas/register). */
  readonly copyImage: lambda.IFunction;
  /** The VM Import service role that reads the artifact from S3 (passed as RoleName). */
  readonly importRole: iam.IRole;
  /**
   * Execution history to CloudWatch Logs.
   * @default - no logging
   */
  readonly logs?: logs.ILogGroup;
  /**
   * First poll interval of an import; it doubles up to `maxPollInterval`. Imports take 10–60+
   * minutes, so there is no short timeout anywhere in this workflow.
   * @default 15 seconds
   */
  readonly pollInterval?: Duration;
  /**
   * The slot stays held until the poll notices the import finished, so a long cap idles the
   * account's import capacity: 60 s is at most 10% of a 10-minute import.
   * @default 60 seconds
   */
  readonly maxPollInterval?: Duration;
  /** How long to wait before asking for an import slot again. @default 20 seconds */
  readonly slotWait?: Duration;
  /** @default 24 hours */
  readonly timeout?: Duration;
}

/** Catch names of the SDK integrations this workflow uses (AWS reports every EC2 error as Ec2Exception). */
export const EC2_ERROR = 'Ec2.Ec2Exception';
export const CONDITION_FAILED = 'DynamoDB.ConditionalCheckFailedException';

/**
 * The register step: import slot → ImportSnapshot → poll → RegisterImage → tags → copies and
 * sharing → release the slot on every path → record the result on the job. JSONPath only, so the
 * local interpreter runs the synthesized definition as is.
 */
export class RegisterWorkflow extends Construct {
  readonly stateMachine: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: RegisterWorkflowProps) {
    super(scope, id);
    const pollSeconds = (props.pollInterval ?? Duration.seconds(15)).toSeconds();
    const maxPollSeconds = (props.maxPollInterval ?? Duration.seconds(60)).toSeconds();
    const slotWait = props.slotWait ?? Duration.seconds(20);
    const { slotsTable } = props;
    const stack = Stack.of(this);
    const slotKey = { name: tasks.DynamoAttributeValue.fromString(IMPORT_SLOTS) };
    const holder = { '#h': sfn.JsonPath.stringAt('$$.Execution.Id') };

    const ensureCounter = new tasks.DynamoPutItem(this, 'EnsureSlotCounter', {
      table: slotsTable,
      item: { ...slotKey, holderCount: tasks.DynamoAttributeValue.fromNumber(0) },
      conditionExpression: 'attribute_not_exists(#n)',
      expressionAttributeNames: { '#n': 'name' },
      resultPath: sfn.JsonPath.DISCARD,
    });
    const acquire = new tasks.DynamoUpdateItem(this, 'AcquireImportSlot', {
      table: slotsTable,
      key: slotKey,
      updateExpression: 'SET #h = :at ADD holderCount :one',
      conditionExpression: 'holderCount < :limit AND attribute_not_exists(#h)',
      expressionAttributeNames: holder,
      expressionAttributeValues: {
        ':at': tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$$.State.EnteredTime')),
        ':one': tasks.DynamoAttributeValue.fromNumber(1),
        ':limit': tasks.DynamoAttributeValue.fromNumber(props.importConcurrency),
      },
      resultPath: sfn.JsonPath.DISCARD,
    });
    // A refused acquire means every slot is taken: wait and ask again. It cannot mean "this
    // execution already holds one": the acquire has no Retry, so an acquire whose response was lost
    // fails over to the failure path, whose release removes whatever this execution holds.
    const waitForSlot = new sfn.Wait(this, 'WaitForImportSlot', { time: sfn.WaitTime.duration(slotWait) });

    const releaseUpdate = (name: string) =>
      new tasks.DynamoUpdateItem(this, name, {
        table: slotsTable,
        key: slotKey,
        updateExpression: 'REMOVE #h ADD holderCount :minus',
        conditionExpression: 'attribute_exists(#h)',
        expressionAttributeNames: holder,
        expressionAttributeValues: { ':minus': tasks.DynamoAttributeValue.fromNumber(-1) },
        resultPath: sfn.JsonPath.DISCARD,
      });

    const ec2Resource = (type: string) =>
      stack.formatArn({ service: 'ec2', resource: type, resourceName: '*' });
    const ec2ImageArn = stack.formatArn({
      service: 'ec2',
      account: '',
      resource: 'image',
      resourceName: '*',
    });
    const ec2SnapshotArn = stack.formatArn({
      service: 'ec2',
      account: '',
      resource: 'snapshot',
      resourceName: '*',
    });

    const importSnapshot = new tasks.CallAwsService(this, 'ImportSnapshot', {
      service: 'ec2',
      action: 'importSnapshot',
      parameters: {
        ClientToken: sfn.JsonPath.stringAt('$.clientToken'),
        RoleName: props.importRole.roleName,
        Description: sfn.JsonPath.format('kiln job {}', sfn.JsonPath.stringAt('$.jobId')),
        DiskContainer: {
          Format: sfn.JsonPath.stringAt('$.diskFormat'),
          UserBucket: { S3Bucket: sfn.JsonPath.stringAt('$.bucket'), S3Key: sfn.JsonPath.stringAt('$.key') },
        },
        TagSpecifications: [
          {
            ResourceType: 'import-snapshot-task',
            Tags: [{ Key: 'kiln:job-id', Value: sfn.JsonPath.stringAt('$.jobId') }],
          },
        ],
      },
      iamResources: [ec2Resource('import-snapshot-task'), ec2SnapshotArn],
      additionalIamStatements: [
        new iam.PolicyStatement({ actions: ['iam:PassRole'], resources: [props.importRole.roleArn] }),
      ],
      resultSelector: { 'taskId.$': '$.ImportTaskId' },
      resultPath: '$.import',
    });
    // A backstop only: the semaphore keeps imports under the account's limit.
    importSnapshot.addRetry({
      errors: [EC2_ERROR],
      interval: Duration.seconds(30),
      maxAttempts: 4,
      backoffRate: 2,
    });

    const describeImport = new tasks.CallAwsService(this, 'DescribeImport', {
      service: 'ec2',
      action: 'describeImportSnapshotTasks',
      parameters: { ImportTaskIds: sfn.JsonPath.array(sfn.JsonPath.stringAt('$.import.taskId')) },
      iamResources: ['*'],
      resultSelector: { 'detail.$': '$.ImportSnapshotTasks[0].SnapshotTaskDetail' },
      resultPath: '$.importStatus',
    });
    describeImport.addRetry({
      errors: [EC2_ERROR],
      interval: Duration.seconds(10),
      maxAttempts: 5,
      backoffRate: 2,
    });

    const initPoll = new sfn.Pass(this, 'StartPolling', {
      parameters: { seconds: pollSeconds },
      resultPath: '$.poll',
    });
    const waitForImport = new sfn.Wait(this, 'WaitForImport', {
      time: sfn.WaitTime.secondsPath('$.poll.seconds'),
    });
    const backOff = new sfn.Pass(this, 'BackOff', {
      parameters: { 'seconds.$': 'States.MathAdd($.poll.seconds, $.poll.seconds)' },
      resultPath: '$.poll',
    });
    const capPoll = new sfn.Pass(this, 'CapPollInterval', {
      parameters: { seconds: maxPollSeconds },
      resultPath: '$.poll',
    });

    const importFailed = new sfn.Pass(this, 'ImportFailed', {
      parameters: {
        Error: 'ImportFailed',
        'Cause.$':
          "States.Format('EC2 import {} ended {}: {}', $.import.taskId, $.importStatus.detail.Status, $.importStatus.detail.StatusMessage)",
      },
      resultPath: '$.error',
    });

    const releaseAfterImport = releaseUpdate('ReleaseImportSlot');
    const slotAlreadyReleased = new sfn.Pass(this, 'SlotAlreadyReleased');
    releaseAfterImport.addCatch(slotAlreadyReleased, {
      errors: [CONDITION_FAILED],
      resultPath: sfn.JsonPath.DISCARD,
    });

    const registerImage = new tasks.CallAwsService(this, 'RegisterImage', {
      service: 'ec2',
      action: 'registerImage',
      parameters: {
        Name: sfn.JsonPath.stringAt('$.imageName'),
        Description: sfn.JsonPath.format('kiln job {}', sfn.JsonPath.stringAt('$.jobId')),
        Architecture: sfn.JsonPath.stringAt('$.architecture'),
        RootDeviceName: '/dev/xvda',
        VirtualizationType: 'hvm',
        EnaSupport: true,
        BootMode: 'uefi-preferred',
        BlockDeviceMappings: [
          {
            DeviceName: '/dev/xvda',
            Ebs: {
              SnapshotId: sfn.JsonPath.stringAt('$.importStatus.detail.SnapshotId'),
              VolumeType: 'gp3',
              DeleteOnTermination: true,
            },
          },
        ],
      },
      iamResources: [ec2ImageArn, ec2SnapshotArn],
      resultSelector: { 'imageId.$': '$.ImageId' },
      resultPath: '$.image',
    });
    // RegisterImage refuses a name that exists: a retried registration looks the image up instead.
    const findImage = new tasks.CallAwsService(this, 'FindRegisteredImage', {
      service: 'ec2',
      action: 'describeImages',
      parameters: {
        Owners: ['self'],
        Filters: [{ Name: 'name', Values: sfn.JsonPath.array(sfn.JsonPath.stringAt('$.imageName')) }],
      },
      iamResources: ['*'],
      resultSelector: { 'images.$': '$.Images' },
      resultPath: '$.found',
    });
    const useFound = new sfn.Pass(this, 'UseRegisteredImage', {
      parameters: { 'imageId.$': '$.found.images[0].ImageId' },
      resultPath: '$.image',
    });
    const registerFailed = new sfn.Pass(this, 'RegisterFailed', {
      parameters: { Error: 'RegisterFailed', 'Cause.$': '$.registerError.Cause' },
      resultPath: '$.error',
    });

    const tagImage = new tasks.CallAwsService(this, 'TagImageAndSnapshot', {
      service: 'ec2',
      action: 'createTags',
      parameters: {
        Resources: sfn.JsonPath.array(
          sfn.JsonPath.stringAt('$.image.imageId'),
          sfn.JsonPath.stringAt('$.importStatus.detail.SnapshotId'),
        ),
        Tags: [
          { Key: 'kiln:job-id', Value: sfn.JsonPath.stringAt('$.jobId') },
          { Key: 'kiln:build-type', Value: sfn.JsonPath.stringAt('$.buildType') },
          { Key: 'kiln:expires-at', Value: sfn.JsonPath.stringAt('$.expiresAt') },
          { Key: 'kiln:deployment', Value: props.deploymentId },
        ],
      },
      iamResources: [ec2ImageArn, ec2SnapshotArn],
      resultPath: sfn.JsonPath.DISCARD,
    });
    tagImage.addRetry({ errors: [EC2_ERROR], interval: Duration.seconds(5), maxAttempts: 4, backoffRate: 2 });

    const share = new tasks.CallAwsService(this, 'ShareImage', {
      service: 'ec2',
      action: 'modifyImageAttribute',
      parameters: {
        ImageId: sfn.JsonPath.stringAt('$.image.imageId'),
        Attribute: 'launchPermission',
        OperationType: 'add',
        UserIds: sfn.JsonPath.listAt('$.shareWith'),
      },
      iamResources: [ec2ImageArn],
      resultPath: sfn.JsonPath.DISCARD,
    });
    share.addRetry({ errors: [EC2_ERROR], interval: Duration.seconds(5), maxAttempts: 4, backoffRate: 2 });

    const copies = new sfn.Map(this, 'CopyToRegions', {
      itemsPath: '$.copyRegions',
      maxConcurrency: 5,
      itemSelector: {
        'region.$': '$$.Map.Item.Value',
        'sourceRegion.$': '$.homeRegion',
        'sourceImageId.$': '$.image.imageId',
        'imageName.$': '$.imageName',
        'jobId.$': '$.jobId',
        'buildType.$': '$.buildType',
        'expiresAt.$': '$.expiresAt',
        'shareWith.$': '$.shareWith',
        deploymentId: props.deploymentId,
      },
      resultPath: '$.copies',
    });
    const copyOne = new tasks.LambdaInvoke(this, 'CopyImage', {
      lambdaFunction: props.copyImage,
      payloadResponseOnly: true,
    });
    copyOne.addRetry({
      errors: ['CopyNotReady'],
      interval: Duration.seconds(60),
      maxAttempts: 60,
      backoffRate: 1,
    });
    copies.itemProcessor(copyOne);

    const recordSuccess = new tasks.LambdaInvoke(this, 'RecordSuccess', {
      lambdaFunction: props.recordResult,
      payload: sfn.TaskInput.fromObject({
        outcome: 'SUCCEEDED',
        'jobId.$': '$.jobId',
        'executionId.$': '$$.Execution.Id',
        'homeRegion.$': '$.homeRegion',
        'imageId.$': '$.image.imageId',
        'snapshotId.$': '$.importStatus.detail.SnapshotId',
        'copies.$': '$.copies',
      }),
      payloadResponseOnly: true,
      resultPath: sfn.JsonPath.DISCARD,
    });
    const releaseOnFailure = releaseUpdate('ReleaseSlotAfterFailure');
    const noSlotHeld = new sfn.Pass(this, 'NoSlotHeld');
    releaseOnFailure.addCatch(noSlotHeld, {
      errors: [CONDITION_FAILED],
      resultPath: sfn.JsonPath.DISCARD,
    });
    const recordFailure = new tasks.LambdaInvoke(this, 'RecordFailure', {
      lambdaFunction: props.recordResult,
      payload: sfn.TaskInput.fromObject({
        outcome: 'FAILED',
        'jobId.$': '$.jobId',
        'executionId.$': '$$.Execution.Id',
        'error.$': '$.error',
      }),
      payloadResponseOnly: true,
      resultPath: sfn.JsonPath.DISCARD,
    });
    const failed = new sfn.Fail(this, 'RegistrationFailed', {
      errorPath: '$.error.Error',
      causePath: '$.error.Cause',
    });
    const failurePath = releaseOnFailure.next(recordFailure).next(failed);
    noSlotHeld.next(recordFailure);
    const catchAll = { errors: [sfn.Errors.ALL], resultPath: '$.error' };

    for (const step of [importSnapshot, describeImport, tagImage, share, recordSuccess]) {
      step.addCatch(failurePath, catchAll);
    }
    copies.addCatch(failurePath, catchAll);
    findImage.addCatch(failurePath, catchAll);
    registerImage.addCatch(findImage, { errors: [EC2_ERROR], resultPath: '$.registerError' });
    registerImage.addCatch(failurePath, catchAll);
    releaseAfterImport.addCatch(failurePath, catchAll);
    ensureCounter.addCatch(acquire, { errors: [CONDITION_FAILED], resultPath: sfn.JsonPath.DISCARD });
    ensureCounter.addCatch(failurePath, catchAll);
    acquire.addCatch(waitForSlot, { errors: [CONDITION_FAILED], resultPath: sfn.JsonPath.DISCARD });
    acquire.addCatch(failurePath, catchAll);

    const noSharing = new sfn.Pass(this, 'NoSharing');
    tagImage.next(
      new sfn.Choice(this, 'ShareWithAccounts?')
        .when(sfn.Condition.isPresent('$.shareWith[0]'), share)
        .otherwise(noSharing),
    );
    share.next(copies);
    noSharing.next(copies);
    copies.next(recordSuccess).next(new sfn.Succeed(this, 'Registered'));

    const definition = ensureCounter.next(acquire);
    acquire.next(importSnapshot);
    waitForSlot.next(acquire);
    importSnapshot
      .next(initPoll)
      .next(describeImport)
      .next(
        new sfn.Choice(this, 'ImportDone?')
          .when(sfn.Condition.stringEquals('$.importStatus.detail.Status', 'completed'), releaseAfterImport)
          .when(
            sfn.Condition.or(
              sfn.Condition.stringEquals('$.importStatus.detail.Status', 'deleted'),
              sfn.Condition.stringEquals('$.importStatus.detail.Status', 'deleting'),
            ),
            importFailed.next(failurePath),
          )
          .otherwise(
            waitForImport.next(
              new sfn.Choice(this, 'PollIntervalAtMax?')
                .when(
                  sfn.Condition.numberGreaterThanEquals('$.poll.seconds', maxPollSeconds / 2),
                  capPoll.next(describeImport),
                )
                .otherwise(backOff.next(describeImport)),
            ),
          ),
      );
    releaseAfterImport.next(registerImage);
    slotAlreadyReleased.next(registerImage);
    registerImage.next(tagImage);
    findImage.next(
      new sfn.Choice(this, 'ImageFound?')
        .when(sfn.Condition.isPresent('$.found.images[0].ImageId'), useFound.next(tagImage))
        .otherwise(registerFailed.next(failurePath)),
    );

    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineName: props.stateMachineName,
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      timeout: props.timeout ?? Duration.hours(24),
      tracingEnabled: true,
      ...(props.logs
        ? { logs: { destination: props.logs, level: sfn.LogLevel.ALL, includeExecutionData: false } }
        : {}),
    });
  }
}
