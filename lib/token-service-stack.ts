import { CfnOutput, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib'
import * as acm from 'aws-cdk-lib/aws-certificatemanager'
import * as route53 from 'aws-cdk-lib/aws-route53'
import * as sns from 'aws-cdk-lib/aws-sns'
import type { Construct } from 'constructs'
import type { TokenServiceConfig } from './config-schema.js'
import { DEFAULTS } from './defaults.js'
import { TokenService, type TokenServiceProps } from './token-service.js'

/**
 * A custom domain given by ARNs and ids, as the config file carries it (`domain`:
 * lib/config-schema.ts).
 */
export type StackDomainProps = NonNullable<TokenServiceConfig['domain']>

export interface TokenServiceStackProps
  extends StackProps,
    Omit<TokenServiceProps, 'alarmTopic' | 'domain'> {
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

  constructor(scope: Construct, id: string, props: TokenServiceStackProps) {
    super(scope, id, {
      ...props,
      // A stack that keeps its data is not deleted by a slip either.
      terminationProtection:
        props.terminationProtection ??
        (props.removalPolicy ?? DEFAULTS.removalPolicy) === RemovalPolicy.RETAIN,
    })
    const { alarmTopicArn, domain, ...serviceProps } = props
    if (domain?.hostedZoneId !== undefined && domain.hostedZoneName === undefined) {
      throw new Error('TokenServiceStack: domain.hostedZoneId needs domain.hostedZoneName')
    }
    this.service = new TokenService(this, 'TokenService', {
      ...serviceProps,
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
    if (this.service.envelopeSigning) {
      output(
        'EnvelopeKeyArn',
        this.service.envelopeSigning.key.keyArn,
        'The KMS key that wraps the envelope signing keys',
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
