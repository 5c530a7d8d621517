import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { ExistingVpc } from '../settings';

export interface NetworkProps {
  /** Deploy into this VPC instead of creating one; its subnets must reach the internet. @default - a new VPC */
  readonly existingVpc?: ExistingVpc;
  /** Availability zones of a new VPC. @default 2 */
  readonly maxAzs?: number;
  /** NAT gateways of a new VPC; each one is billed by the hour even when the fleet is idle. @default 1 */
  readonly natGateways?: number;
  /** Retention of the new VPC's flow logs. @default logs.RetentionDays.ONE_MONTH */
  readonly flowLogRetention?: logs.RetentionDays;
}

/**
 * Where the build agents run: private subnets with outbound access through NAT (see
 * docs/adr/0002-fleet-network.md), plus free gateway endpoints so artifact uploads and job-record
 * writes bypass the NAT gateway and its per-GB charge.
 */
export class Network extends Construct {
  readonly vpc: ec2.IVpc;
  readonly agentSubnets: ec2.SubnetSelection;

  constructor(scope: Construct, id: string, props: NetworkProps = {}) {
    super(scope, id);
    if (props.existingVpc) {
      const existing = props.existingVpc;
      // fromVpcAttributes takes the ids as given: no lookup, so synth stays offline.
      this.vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', {
        vpcId: existing.vpcId,
        availabilityZones: existing.availabilityZones,
        privateSubnetIds: existing.privateSubnetIds,
      });
      this.agentSubnets = { subnets: this.vpc.privateSubnets };
      Validations.of(this.vpc).acknowledge({
        id: 'Annotation::@aws-cdk/aws-ec2:noSubnetRouteTableId',
        reason:
          'Kiln only launches instances into the given subnets and never reads or changes their route tables.',
      });
      return;
    }

    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: props.maxAzs ?? 2,
      natGateways: props.natGateways ?? 1,
      subnetConfiguration: [
        { name: 'nat', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24, mapPublicIpOnLaunch: false },
        { name: 'agents', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
      ],
      gatewayEndpoints: {
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
        DynamoDB: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
      },
    });
    const flowLogs = new logs.LogGroup(this, 'FlowLogs', {
      retention: props.flowLogRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    vpc.addFlowLog('FlowLog', {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs),
      trafficType: ec2.FlowLogTrafficType.ALL,
    });
    this.vpc = vpc;
    this.agentSubnets = { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS };
  }
}
