import { Duration, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib'
import * as s3 from 'aws-cdk-lib/aws-s3'
import * as synthetics from 'aws-cdk-lib/aws-synthetics'
import type { Construct } from 'constructs'
import { DISCOVERY_CHECK_CODE } from './canary/discovery-check.js'

/** The check's code, inline in the template: nothing is fetched when it runs. */
export const CANARY_CODE = DISCOVERY_CHECK_CODE

/**
 * A CloudWatch Synthetics canary (`DiscoveryCanary`) that fetches discovery and JWKS at
 * `issuer` every `every`, as a verifier would: the one check that sees the public hostname
 * fail (DNS, certificate, CloudFront, a broken deploy) while no request reaches the API.
 * Its artifacts bucket (`DiscoveryCanaryArtifacts`) keeps 30 days.
 */
export function buildCanary(
  scope: Construct,
  { issuer, every }: { readonly issuer: string; readonly every: Duration },
): synthetics.Canary {
  const bucket = new s3.Bucket(scope, 'DiscoveryCanaryArtifacts', {
    encryption: s3.BucketEncryption.S3_MANAGED,
    enforceSSL: true,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    lifecycleRules: [{ expiration: Duration.days(30) }],
    // Kept when the stack goes (CloudFormation deletes no bucket that holds objects); it
    // empties itself in 30 days.
    removalPolicy: RemovalPolicy.RETAIN,
  })
  Validations.of(bucket).acknowledge({
    id: 'AwsSolutions-S1',
    reason:
      'The canary’s own artifacts (its logs and results of fetching public discovery and JWKS documents), no user data, kept 30 days: an access log of that bucket would record only the canary writing to it.',
  })
  const canary = new synthetics.Canary(scope, 'DiscoveryCanary', {
    runtime: synthetics.Runtime.SYNTHETICS_NODEJS_PUPPETEER_9_1,
    test: synthetics.Test.custom({
      code: synthetics.Code.fromInline(CANARY_CODE),
      handler: 'index.handler',
    }),
    schedule: synthetics.Schedule.rate(every),
    environmentVariables: { ISSUER: issuer },
    artifactsBucketLocation: { bucket },
    artifactS3EncryptionMode: synthetics.ArtifactsEncryptionMode.S3_MANAGED,
    successRetentionPeriod: Duration.days(7),
    failureRetentionPeriod: Duration.days(30),
    timeout: Duration.seconds(30),
    provisionedResourceCleanup: true,
  })
  // cdk-nag names resources as the template has them: a pinned region, account and partition
  // (with the partition-literals flag of cdk.json) literally.
  const stack = Stack.of(scope)
  const known = (value: string, pseudo: string) =>
    Token.isUnresolved(value) ? `<AWS::${pseudo}>` : value
  const bucketId = stack.getLogicalId(bucket.node.defaultChild as s3.CfnBucket)
  const why =
    'The role CDK gives a Synthetics canary, as CloudWatch Synthetics documents it: PutObject on its own artifacts bucket’s objects, its log groups (named /aws/lambda/cwsyn-<canary>-<id> by Synthetics, hence the prefix), ListAllMyBuckets and PutMetricData (neither has resource-level permissions; PutMetricData is limited to the CloudWatchSynthetics namespace by a condition). It reads no data of the service: it fetches public documents over HTTPS.'
  Validations.of(canary.role).acknowledge(
    { id: 'AwsSolutions-IAM5[Resource::*]', reason: why },
    { id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/*]`, reason: why },
    {
      id: `AwsSolutions-IAM5[Resource::arn:${known(stack.partition, 'Partition')}:logs:${known(stack.region, 'Region')}:${known(stack.account, 'AccountId')}:log-group:/aws/lambda/cwsyn-*]`,
      reason: why,
    },
    { id: 'Serverless-LambdaStarPermissions', reason: why },
  )
  return canary
}
