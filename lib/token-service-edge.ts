import { Duration, Fn, RemovalPolicy, Stack, type StackProps, Validations } from 'aws-cdk-lib'
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2'
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront'
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins'
import * as logs from 'aws-cdk-lib/aws-logs'
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager'
import * as wafv2 from 'aws-cdk-lib/aws-wafv2'
import { Construct } from 'constructs'

/**
 * The edge (docs/operations.md "Edge"): CloudFront in front of the HTTP API, behind an
 * AWS WAF web ACL. A CLOUDFRONT web ACL must live in us-east-1: `EdgeWebAcl` builds it
 * in whatever stack that is (`EdgeWafStack` beside a stack in another region), and
 * `buildEdge` builds the distribution beside the API and refers to the ACL by its ARN.
 */

/** The routes the per-IP rate rule counts: those that cost scrypt or mint tokens. */
export const RATE_LIMITED_PATHS = ['/login', '/token', '/me/password'] as const

/** The header CloudFront adds to every request it forwards; the functions refuse one without it. */
export const ORIGIN_VERIFY_HEADER = 'X-Origin-Verify'

/** The region of every CLOUDFRONT-scoped web ACL. */
export const EDGE_WAF_REGION = 'us-east-1'

/** WAF counts a rate-based rule over this window; `ratePerIp` is per window. */
export const RATE_WINDOW_SECONDS = 300

export interface EdgeWebAclProps {
  /** Requests per IP address per 5 minutes to `/login`, `/token` and `/me/password` together. */
  readonly ratePerIp: number
  /** Of the WAF log group. @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy
  /** Of the WAF log group. @default logs.RetentionDays.THREE_MONTHS */
  readonly logRetention?: logs.RetentionDays
}

const visibility = (metricName: string): wafv2.CfnWebACL.VisibilityConfigProperty => ({
  cloudWatchMetricsEnabled: true,
  metricName,
  sampledRequestsEnabled: true,
})

const managedGroup = (
  name: string,
  priority: number,
  countOnly: readonly string[] = [],
): wafv2.CfnWebACL.RuleProperty => ({
  name,
  priority,
  overrideAction: { none: {} },
  statement: {
    managedRuleGroupStatement: {
      vendorName: 'AWS',
      name,
      ...(countOnly.length > 0 && {
        ruleActionOverrides: countOnly.map((rule) => ({ name: rule, actionToUse: { count: {} } })),
      }),
    },
  },
  visibilityConfig: visibility(name),
})

/**
 * The CLOUDFRONT web ACL (`Acl`) and its log (`Logs`, only blocked and counted requests,
 * credentials redacted). Build it in a us-east-1 stack.
 */
export class EdgeWebAcl extends Construct {
  public readonly webAcl: wafv2.CfnWebACL
  public readonly logGroup: logs.LogGroup

  constructor(scope: Construct, id: string, props: EdgeWebAclProps) {
    super(scope, id)
    const path = (value: string): wafv2.CfnWebACL.StatementProperty => ({
      byteMatchStatement: {
        fieldToMatch: { uriPath: {} },
        positionalConstraint: 'EXACTLY',
        searchString: value,
        textTransformations: [{ priority: 0, type: 'NONE' }],
      },
    })
    this.webAcl = new wafv2.CfnWebACL(this, 'Acl', {
      scope: 'CLOUDFRONT',
      // CloudFormation's pattern: letters, digits, spaces and + = : # @ / - , . only.
      description:
        'Token service edge - per-IP rate on /login, /token and /me/password, AWS managed rules',
      defaultAction: { allow: {} },
      visibilityConfig: visibility('TokenServiceEdge'),
      // The same shape as the service's own 429 (functions/core/errors.ts TooManyRequests).
      customResponseBodies: {
        slowDown: {
          contentType: 'APPLICATION_JSON',
          content: JSON.stringify({
            error: 'slow_down',
            error_description: 'too many requests from this address, try again later',
          }),
        },
      },
      rules: [
        // Addresses AWS threat intelligence lists as bots and attackers: cheapest first.
        managedGroup('AWSManagedRulesAmazonIpReputationList', 0),
        {
          name: 'RatePerIp',
          priority: 1,
          action: {
            block: {
              customResponse: {
                responseCode: 429,
                customResponseBodyKey: 'slowDown',
                responseHeaders: [{ name: 'Retry-After', value: String(RATE_WINDOW_SECONDS) }],
              },
            },
          },
          statement: {
            rateBasedStatement: {
              limit: props.ratePerIp,
              aggregateKeyType: 'IP',
              evaluationWindowSec: RATE_WINDOW_SECONDS,
              scopeDownStatement: {
                orStatement: { statements: RATE_LIMITED_PATHS.map(path) },
              },
            },
          },
          visibilityConfig: visibility('RatePerIp'),
        },
        managedGroup('AWSManagedRulesKnownBadInputsRuleSet', 2),
        // Counted, not blocked: a password may hold markup (CrossSiteScripting_BODY); verifiers
        // and native clients fetch JWKS and refresh without a User-Agent (NoUserAgent_HEADER).
        // SizeRestrictions_BODY (8 KB) blocks: the functions refuse bodies over 8 KB anyway.
        managedGroup('AWSManagedRulesCommonRuleSet', 3, [
          'CrossSiteScripting_BODY',
          'NoUserAgent_HEADER',
        ]),
      ],
    })
    // WAF's log group name must start with aws-waf-logs-.
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: `aws-waf-logs-${Stack.of(this).stackName}-${this.node.addr.slice(0, 8)}`,
      retention: props.logRetention ?? logs.RetentionDays.THREE_MONTHS,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    })
    new wafv2.CfnLoggingConfiguration(this, 'Logging', {
      resourceArn: this.webAcl.attrArn,
      logDestinationConfigs: [this.logGroup.logGroupArn],
      // Tokens, cookies and proofs never reach the log.
      redactedFields: ['authorization', 'cookie', 'dpop', ORIGIN_VERIFY_HEADER.toLowerCase()].map(
        (name) => ({ singleHeader: { Name: name } }),
      ),
      // Only what WAF blocked or counted: a line per allowed request would cost more than WAF.
      loggingFilter: {
        DefaultBehavior: 'DROP',
        Filters: [
          {
            Behavior: 'KEEP',
            Requirement: 'MEETS_ANY',
            Conditions: [
              { ActionCondition: { Action: 'BLOCK' } },
              { ActionCondition: { Action: 'COUNT' } },
            ],
          },
        ],
      },
    })
  }
}

/** A us-east-1 stack holding the web ACL of a token service in another region. */
export class EdgeWafStack extends Stack {
  public readonly acl: EdgeWebAcl

  constructor(scope: Construct, id: string, props: StackProps & EdgeWebAclProps) {
    const { ratePerIp, removalPolicy, logRetention, ...stackProps } = props
    super(scope, id, { ...stackProps, crossRegionReferences: true })
    this.acl = new EdgeWebAcl(this, 'EdgeWebAcl', {
      ratePerIp,
      ...(removalPolicy !== undefined && { removalPolicy }),
      ...(logRetention !== undefined && { logRetention }),
    })
  }
}

/** What the edge gives the rest of the service. */
export interface ServiceEdge {
  readonly distribution: cloudfront.Distribution
  /** `https://<distribution domain>`: the issuer and what clients call. */
  readonly url: string
  /** The value of `X-Origin-Verify`, for the functions' `EDGE_ORIGIN_SECRET`. */
  readonly originSecret: string
  readonly secret: secretsmanager.Secret
}

/**
 * The distribution (`Edge`) in front of `api`, behind the web ACL `webAclArn`, and the
 * secret (`EdgeOriginSecret`) it proves itself with. Nothing is cached but the JWKS and
 * discovery documents, for at most `wellKnownMaxAge`.
 */
export function buildEdge(
  scope: Construct,
  api: apigwv2.HttpApi,
  {
    webAclArn,
    wellKnownMaxAge,
  }: { readonly webAclArn: string; readonly wellKnownMaxAge: Duration },
): ServiceEdge {
  // Generated at deploy: not in the repo, the template or the synthesized assets. CloudFormation
  // resolves it into the distribution's origin header and the functions' environment.
  const secret = new secretsmanager.Secret(scope, 'EdgeOriginSecret', {
    description: `Proves that a request to ${scope.node.path} came through its CloudFront edge`,
    generateSecretString: { excludePunctuation: true, passwordLength: 48 },
  })
  Validations.of(secret).acknowledge({
    id: 'AwsSolutions-SMG4',
    reason:
      'Not a credential to data: it only tells the functions that CloudFront (with its WAF) forwarded the request. CloudFront and the functions read it at deploy; rotating it would refuse requests between the two updates. Rotate by replacing the secret in a deploy (docs/operations.md "Edge").',
  })
  const originSecret = secret.secretValue.unsafeUnwrap()
  // `https://<id>.execute-api.<region>.amazonaws.com` without its scheme.
  const apiHost = Fn.select(2, Fn.split('/', api.apiEndpoint))
  const origin = new origins.HttpOrigin(apiHost, {
    protocolPolicy: cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
    originSslProtocols: [cloudfront.OriginSslPolicy.TLS_V1_2],
    customHeaders: { [ORIGIN_VERIFY_HEADER]: originSecret },
  })
  // JWKS and discovery: cached as the jwks function's Cache-Control says, at most this long.
  const wellKnown = new cloudfront.CachePolicy(scope, 'EdgeWellKnownCache', {
    comment: 'Token service: JWKS and discovery, briefly',
    minTtl: Duration.seconds(0),
    defaultTtl: Duration.seconds(Math.min(60, wellKnownMaxAge.toSeconds())),
    maxTtl: wellKnownMaxAge,
    // Origin is forwarded and in the key: a browser's CORS answer differs by origin.
    headerBehavior: cloudfront.CacheHeaderBehavior.allowList('Origin'),
    cookieBehavior: cloudfront.CacheCookieBehavior.none(),
    queryStringBehavior: cloudfront.CacheQueryStringBehavior.none(),
    enableAcceptEncodingGzip: true,
    enableAcceptEncodingBrotli: true,
  })
  const distribution = new cloudfront.Distribution(scope, 'Edge', {
    comment: `Token service ${scope.node.path}`,
    webAclId: webAclArn,
    httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
    priceClass: cloudfront.PriceClass.PRICE_CLASS_ALL,
    defaultBehavior: {
      origin,
      // POST /token, /login...: never cached; every viewer header but Host (Authorization, DPoP,
      // Cookie, Origin) and CloudFront-Viewer-Address (the client's address) go to the API.
      viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
      allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
      cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
      originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER_AND_CLOUDFRONT_2022,
      compress: true,
    },
    additionalBehaviors: {
      '/.well-known/*': {
        origin,
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
        allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD_OPTIONS,
        cachePolicy: wellKnown,
        compress: true,
      },
    },
  })
  Validations.of(distribution).acknowledge(
    {
      id: 'AwsSolutions-CFR1',
      reason:
        'No geo restriction: the users of a token service are wherever its clients are. A deployment that serves some countries only adds a geo-match rule to the web ACL.',
    },
    {
      id: 'AwsSolutions-CFR3',
      reason:
        'No CloudFront access log: the API access log records every request CloudFront forwards (with the client address), and the WAF log every request WAF blocked or counted, credentials redacted. A CloudFront log would repeat them at a cost per line.',
    },
    {
      id: 'AwsSolutions-CFR4',
      reason:
        'The default *.cloudfront.net certificate: CloudFront fixes its viewer security policy (TLSv1) and it cannot be raised without a certificate of our own; the edge with a custom domain is not offered yet (docs/operations.md "Edge").',
    },
  )
  return {
    distribution,
    url: `https://${distribution.distributionDomainName}`,
    originSecret,
    secret,
  }
}
