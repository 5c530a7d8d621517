import { Aws } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

export interface AlertingProps {
  readonly prefix: string;
  /** Subscribed to the alarm topic (confirmation required). @default - no subscription */
  readonly alarmEmail?: string;
}

/**
 * Where Kiln tells people about trouble: an alarm topic and a fleet-activity topic (Auto Scaling
 * launch/terminate events), both encrypted with a customer managed key, because CloudWatch and
 * Auto Scaling cannot publish to a topic encrypted with the AWS managed SNS key.
 */
export class Alerting extends Construct {
  readonly key: kms.Key;
  readonly alarmTopic: sns.Topic;
  readonly fleetActivityTopic: sns.Topic;

  constructor(scope: Construct, id: string, props: AlertingProps) {
    super(scope, id);
    this.key = new kms.Key(this, 'Key', {
      description: 'Kiln: encrypts the alarm and fleet-activity topics',
      enableKeyRotation: true,
    });
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
    );
    // Auto Scaling publishes with its service-linked role. The role may not exist yet when the key is
    // created (it appears with the first group), so it is matched by ARN rather than named as principal.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AutoScalingNotificationsPublish',
        principals: [new iam.AnyPrincipal()],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: {
          StringEquals: {
            'aws:PrincipalArn': `arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling`,
            'kms:ViaService': `sns.${Aws.REGION}.amazonaws.com`,
          },
        },
      }),
    );

    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', {
      topicName: `${props.prefix}-alarms`,
      displayName: 'Kiln alarms',
      masterKey: this.key,
      enforceSSL: true,
    });
    // The TLS-only topic policy replaces SNS's default one, which is what let CloudWatch publish.
    this.alarmTopic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.alarmTopic.topicArn],
        conditions: {
          StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
          ArnLike: {
            'aws:SourceArn': `arn:${Aws.PARTITION}:cloudwatch:${Aws.REGION}:${Aws.ACCOUNT_ID}:alarm:*`,
          },
        },
      }),
    );
    if (props.alarmEmail)
      this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));

    this.fleetActivityTopic = new sns.Topic(this, 'FleetActivityTopic', {
      topicName: `${props.prefix}-fleet-activity`,
      displayName: 'Kiln build fleet launches and terminations',
      masterKey: this.key,
      enforceSSL: true,
    });
  }
}
