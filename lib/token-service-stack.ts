import {
  EDGE_WAF_REGION,
  EdgeWafStack,
  TokenService,
  type TokenServiceProps,
} from '@rotating-token-service/cdk'
import { CfnOutput, RemovalPolicy, Stack, type StackProps, Token } from 'aws-cdk-lib'
import * as acm from 'aws-cdk-lib/aws-certificatemanager'
import * as route53 from 'aws-cdk-lib/aws-route53'
import * as sns from 'aws-cdk-lib/aws-sns'
import type { Construct } from 'constructs'
import type { TokenServiceConfig } from './config-schema.js'
import { DEFAULTS } from './defaults.js'

/**
 * A custom domain given by ARNs and ids, as the config file carries it (`domain`:
 * lib/config-schema.ts).
 */
export type StackDomainProps = NonNullable<TokenServiceConfig['domain']>

export interface TokenServiceStackProps
  extends StackProps,
    Omit<TokenServiceProps, 'alarmTopic' | 'domain' | 'edgeWebAclArn'> {
  /** SNS topic every alarm notifies. @default no alarm action */
  readonly alarmTopicArn?: TokenServiceConfig['alarmTopicArn']
  /** @default the execute-api endpoint */
  readonly domain?: StackDomainProps
}

/**
 * The token service as a deployable stack: the `TokenService` construct and
 * the outputs an operator needs (API URL, issuer, JWKS URL, table, active key,
 * the security events' bus and dead-letter queue).
 */
export class TokenServiceStack extends Stack {
  public readonly service: TokenService
  /** The us-east-1 stack of the edge's web ACL, when this stack is in another region. */
  public readonly edgeWafStack?: EdgeWafStack

  constructor(scope: Construct, id: string, props: TokenServiceStackProps) {
    const region = props.env?.region
    if (props.edge && (region === undefined || Token.isUnresolved(region))) {
      throw new Error(
        `TokenServiceStack: edge needs env.region (the config's region): the web ACL of a CloudFront distribution lives in ${EDGE_WAF_REGION}`,
      )
    }
    // The web ACL's ARN crosses regions (with cdk.json's flags, as Fn::GetStackOutput).
    const wafElsewhere = props.edge !== undefined && region !== EDGE_WAF_REGION
    super(scope, id, {
      ...props,
      ...(wafElsewhere && { crossRegionReferences: true }),
      // A stack that keeps its data is not deleted by a slip either.
      terminationProtection:
        props.terminationProtection ??
        (props.removalPolicy ?? DEFAULTS.removalPolicy) === RemovalPolicy.RETAIN,
    })
    const { alarmTopicArn, domain, ...serviceProps } = props
    if (wafElsewhere && props.edge) {
      this.edgeWafStack = new EdgeWafStack(scope, `${id}-EdgeWaf`, {
        description: `The web ACL of the CloudFront edge of ${this.stackName} (CloudFront reads web ACLs in ${EDGE_WAF_REGION})`,
        env: {
          ...(props.env?.account !== undefined && { account: props.env.account }),
          region: EDGE_WAF_REGION,
        },
        terminationProtection: this.terminationProtection,
        ratePerIp: props.edge.waf.ratePerIp ?? DEFAULTS.edgeRatePerIp,
        ...(props.removalPolicy !== undefined && { removalPolicy: props.removalPolicy }),
        ...(props.logRetention !== undefined && { logRetention: props.logRetention }),
      })
    }
    if (domain?.hostedZoneId !== undefined && domain.hostedZoneName === undefined) {
      throw new Error('TokenServiceStack: domain.hostedZoneId needs domain.hostedZoneName')
    }
    this.service = new TokenService(this, 'TokenService', {
      ...serviceProps,
      ...(this.edgeWafStack && { edgeWebAclArn: this.edgeWafStack.acl.webAcl.attrArn }),
      ...(alarmTopicArn !== undefined && {
        alarmTopic: sns.Topic.fromTopicArn(this, 'AlarmTopic', alarmTopicArn),
      }),
      ...(domain !== undefined && {
        domain: {
          domainName: domain.domainName,
          certificate: acm.Certificate.fromCertificateArn(
            this,
            'Certificate',
            domain.certificateArn,
          ),
          ...(domain.hostedZoneId !== undefined && {
            hostedZone: route53.HostedZone.fromHostedZoneAttributes(this, 'HostedZone', {
              hostedZoneId: domain.hostedZoneId,
              zoneName: domain.hostedZoneName as string,
            }),
          }),
        },
      }),
    })
    const output = (name: string, value: string, description: string) =>
      new CfnOutput(this, name, { value, description })
    output('ApiUrl', this.service.url, 'Base URL of the token service HTTP API')
    if (this.service.edge) {
      output(
        'EdgeDistributionId',
        this.service.edge.distribution.distributionId,
        'The CloudFront distribution in front of the API',
      )
    }
    output('Issuer', this.service.issuer, 'The iss claim of the access tokens')
    output(
      'JwksUrl',
      `${this.service.issuer}/.well-known/jwks.json`,
      'Where verifiers fetch the public keys',
    )
    output(
      'DiscoveryUrl',
      `${this.service.issuer}/.well-known/openid-configuration`,
      'OpenID Connect / RFC 8414 metadata',
    )
    output('TableName', this.service.table.tableName, 'npm run users -- ... --table <this>')
    // A KMS key signs; an envelope key is a pair in the table, wrapped by the envelope key.
    if (this.service.activeKey && this.service.activeKeyAlias) {
      output('ActiveSigningKeyArn', this.service.activeKey.keyArn, 'The KMS key that signs')
      output(
        'ActiveSigningKeyAlias',
        this.service.activeKeyAlias.aliasName,
        'Alias that follows the active key',
      )
    }
    if (this.service.envelopeSigning?.key) {
      output(
        'EnvelopeKeyArn',
        this.service.envelopeSigning.key.keyArn,
        'The KMS key that wraps the envelope signing keys',
      )
    }
    if (this.service.envelopeSigning?.multiRegionKey) {
      output(
        'EnvelopeMultiRegionKeyArn',
        this.service.envelopeSigning.multiRegionKey.keyArn,
        "This region's copy of the multi-Region key that wraps the envelope signing keys added with regions",
      )
    }
    output(
      'DashboardName',
      this.service.monitoring.dashboard.dashboardName,
      'CloudWatch dashboard of the service',
    )
    if (this.service.securityEvents) {
      output(
        'SecurityEventBusName',
        this.service.securityEvents.bus.eventBusName,
        'EventBridge bus of the security events (docs/events.md)',
      )
      output(
        'SecurityEventDeadLetterQueueUrl',
        this.service.securityEvents.deadLetterQueue.queueUrl,
        'Batches of security events that could not be forwarded (docs/operations.md)',
      )
    }
  }
}
