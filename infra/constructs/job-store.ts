import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import { Construct } from 'constructs';
import {
  type IndexDefinition,
  JOBS_TABLE,
  jobsTableName,
  type KeyAttribute,
  SLOTS_TABLE,
  slotsTableName,
} from '../definitions';

export interface JobStoreProps {
  readonly prefix: string;
  /** Refuse `DeleteTable` (including from a stack deletion) until switched off. @default true */
  readonly deletionProtection?: boolean;
}

function attribute(key: KeyAttribute): dynamodb.Attribute {
  return {
    name: key.name,
    type: key.type === 'S' ? dynamodb.AttributeType.STRING : dynamodb.AttributeType.NUMBER,
  };
}

/** The jobs table, built from JOBS_TABLE like the local stack's, and the bus for job events. */
export class JobStore extends Construct {
  readonly table: dynamodb.Table;
  readonly eventBus: events.EventBus;
  /** Counting semaphores: import slots (register workflow) and the auto-build cap. */
  readonly slotsTable: dynamodb.Table;
  readonly indexes: readonly IndexDefinition[] = JOBS_TABLE.globalSecondaryIndexes;

  constructor(scope: Construct, id: string, props: JobStoreProps) {
    super(scope, id);
    this.table = new dynamodb.Table(this, 'Table', {
      tableName: jobsTableName(props.prefix),
      partitionKey: attribute(JOBS_TABLE.partitionKey),
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: JOBS_TABLE.timeToLiveAttribute,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      deletionProtection: props.deletionProtection ?? true,
      // Job records are the audit trail of every build: a stack deletion keeps them.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const index of JOBS_TABLE.globalSecondaryIndexes) {
      this.table.addGlobalSecondaryIndex({
        indexName: index.indexName,
        partitionKey: attribute(index.partitionKey),
        sortKey: attribute(index.sortKey),
        projectionType: dynamodb.ProjectionType.ALL,
      });
    }
    this.slotsTable = new dynamodb.Table(this, 'Slots', {
      tableName: slotsTableName(props.prefix),
      partitionKey: attribute(SLOTS_TABLE.partitionKey),
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      // Slot counts describe work in flight only; a new stack starts from zero.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.eventBus = new events.EventBus(this, 'Events', {
      eventBusName: `${props.prefix}-job-events`,
      description: 'Kiln job state changes',
    });
  }

  /** ARNs of the table and each of its indexes, spelled out so no grant needs `index/*`. */
  tableAndIndexArns(): string[] {
    return [this.table.tableArn, ...this.indexes.map((i) => `${this.table.tableArn}/index/${i.indexName}`)];
  }
}
