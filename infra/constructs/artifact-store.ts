import { Aws, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { S3_LAYOUT } from '../../lambdas/api/routes';
import { artifactsBucketName } from '../definitions';

export interface ArtifactStoreProps {
  readonly prefix: string;
  /**
   * Backstop expiry of built images under `artifacts/`; the retention cleanup deletes them
   * earlier, this only catches what it missed. @default Duration.days(30)
   */
  readonly artifactExpiration?: Duration;
  /** Expiry of build output under `logs/`; match it to how long job records live. @default Duration.days(90) */
  readonly logExpiration?: Duration;
  /** Expiry of S3 server access logs. @default Duration.days(90) */
  readonly accessLogExpiration?: Duration;
}

const DEFAULTS = {
  artifactExpiration: Duration.days(30),
  logExpiration: Duration.days(90),
  accessLogExpiration: Duration.days(90),
} as const;

/** The artifacts bucket (images and build output) and the bucket receiving its access logs. */
export class ArtifactStore extends Construct {
  readonly bucket: s3.Bucket;
  readonly accessLogs: s3.Bucket;

  constructor(scope: Construct, id: string, props: ArtifactStoreProps) {
    super(scope, id);
    this.accessLogs = new s3.Bucket(this, 'AccessLogs', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      // Server access logging can only deliver to SSE-S3 buckets.
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [
        { id: 'expire-access-logs', expiration: props.accessLogExpiration ?? DEFAULTS.accessLogExpiration },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.bucket = new s3.Bucket(this, 'Bucket', {
      // Bucket names are global: the account and region keep two deployments of one prefix apart.
      bucketName: artifactsBucketName(props.prefix, `${Aws.ACCOUNT_ID}-${Aws.REGION}`),
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'artifacts-bucket/',
      lifecycleRules: [
        {
          id: 'backstop-artifacts',
          prefix: S3_LAYOUT.artifactPrefix,
          expiration: props.artifactExpiration ?? DEFAULTS.artifactExpiration,
        },
        {
          id: 'expire-build-logs',
          prefix: S3_LAYOUT.logPrefix,
          expiration: props.logExpiration ?? DEFAULTS.logExpiration,
        },
        // An agent that dies mid-upload leaves parts behind that are billed until aborted.
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }

  /**
   * Read access to job artifacts and build output. ListBucket is included because without it S3
   * answers a missing key with 403 instead of 404, and log readers stop at the first missing chunk.
   */
  grantReadJobObjects(grantee: iam.IGrantable): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [this.objectsUnder(S3_LAYOUT.artifactPrefix), this.objectsUnder(S3_LAYOUT.logPrefix)],
      }),
    );
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn] }),
    );
  }

  /** Write access for build agents: new artifacts (multipart included) and build output chunks. */
  grantWriteJobObjects(grantee: iam.IGrantable): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        // PutObjectTagging: the upload tags the object with its job id and, once hashed, its sha256.
        actions: ['s3:PutObject', 's3:PutObjectTagging', 's3:AbortMultipartUpload'],
        resources: [this.objectsUnder(S3_LAYOUT.artifactPrefix), this.objectsUnder(S3_LAYOUT.logPrefix)],
      }),
    );
  }

  objectsUnder(prefix: string): string {
    return this.bucket.arnForObjects(`${prefix}*`);
  }
}
