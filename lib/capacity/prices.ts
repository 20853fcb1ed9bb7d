/**
 * The prices and quotas the capacity model (model.ts) uses: on-demand list
 * prices of one region, each with its source, dated. Not a quote: check the
 * pages before budgeting, and update the date and figures together.
 */

/** When the figures below were read from their sources. */
export const PRICES_AS_OF = '2026-12-07'

/** A price and where it was read. */
export interface Price {
  readonly usd: number
  /** What one `usd` buys. */
  readonly per: string
  readonly source: string
}

/** A quota per second and where it was read. */
export interface Quota {
  readonly perSecond: number
  readonly scope: string
  readonly source: string
}

export interface RegionPrices {
  readonly apiGateway: {
    /** HTTP API requests: the first 300 million a month, then the rest. */
    readonly first300M: Price
    readonly beyond300M: Price
  }
  readonly lambda: { readonly requests: Price; readonly arm64GbSecond: Price }
  readonly dynamodb: {
    readonly writeRequestUnits: Price
    readonly readRequestUnits: Price
    readonly storageGbMonth: Price
    readonly pitrGbMonth: Price
  }
  readonly kms: {
    readonly keyMonth: Price
    /** Symmetric keys (Decrypt, GenerateDataKey), and RSA 2048 keys (Sign). */
    readonly requests: Price
    /** Asymmetric keys other than RSA 2048 (ECC P-256 Sign). */
    readonly asymmetricRequests: Price
  }
  readonly cloudwatchLogs: { readonly ingestedGb: Price; readonly storedGbMonth: Price }
  readonly xray: { readonly tracesRecorded: Price }
  readonly eventBridge: { readonly customEvents: Price }
  /** Data sent to another region: a global table's replication, a forwarded refresh. */
  readonly dataTransfer: { readonly interRegionGb: Price }
  /** Amazon Cognito user pools, for the comparison in docs/capacity.md. */
  readonly cognito: {
    /** Free monthly active users a month on the Essentials and Lite plans. */
    readonly freeMau: number
    /** Essentials (the plan with refresh-token rotation), per MAU beyond the free ones. */
    readonly essentialsMau: Price
    /** Lite, per MAU: up to 100,000, then up to 1 million, then beyond. */
    readonly liteMau: readonly [Price, Price, Price]
  }
}

const API = 'https://aws.amazon.com/api-gateway/pricing/ (HTTP APIs)'
const LAMBDA = 'https://aws.amazon.com/lambda/pricing/ (Arm, first tier)'
const DYNAMODB =
  'https://aws.amazon.com/dynamodb/pricing/on-demand/ (since the November 2024 price cut)'
const KMS = 'https://aws.amazon.com/kms/pricing/'
const LOGS = 'https://aws.amazon.com/cloudwatch/pricing/ (Logs, standard class)'
const XRAY = 'https://aws.amazon.com/xray/pricing/'
const EVENTS = 'https://aws.amazon.com/eventbridge/pricing/'
const TRANSFER =
  'https://aws.amazon.com/ec2/pricing/on-demand/ (data transfer to another AWS region; DynamoDB global tables bill replication at it)'
const COGNITO = 'https://aws.amazon.com/cognito/pricing/ (feature plans, effective 2024-11-22)'

/** List prices per region (USD). */
export const PRICES: Readonly<Record<string, RegionPrices>> = {
  'us-east-1': {
    apiGateway: {
      first300M: { usd: 1.0, per: 'million requests', source: API },
      beyond300M: { usd: 0.9, per: 'million requests', source: API },
    },
    lambda: {
      requests: { usd: 0.2, per: 'million requests', source: LAMBDA },
      arm64GbSecond: { usd: 0.0000133334, per: 'GB-second', source: LAMBDA },
    },
    dynamodb: {
      writeRequestUnits: { usd: 0.625, per: 'million write request units', source: DYNAMODB },
      readRequestUnits: { usd: 0.125, per: 'million read request units', source: DYNAMODB },
      storageGbMonth: { usd: 0.25, per: 'GB-month', source: DYNAMODB },
      pitrGbMonth: { usd: 0.2, per: 'GB-month', source: DYNAMODB },
    },
    kms: {
      keyMonth: { usd: 1.0, per: 'key-month', source: KMS },
      requests: { usd: 0.03, per: '10,000 requests', source: KMS },
      asymmetricRequests: { usd: 0.15, per: '10,000 requests', source: KMS },
    },
    cloudwatchLogs: {
      ingestedGb: { usd: 0.5, per: 'GB ingested', source: LOGS },
      storedGbMonth: { usd: 0.03, per: 'GB-month', source: LOGS },
    },
    xray: { tracesRecorded: { usd: 5.0, per: 'million traces recorded', source: XRAY } },
    eventBridge: { customEvents: { usd: 1.0, per: 'million custom events', source: EVENTS } },
    dataTransfer: {
      interRegionGb: { usd: 0.02, per: 'GB to another region', source: TRANSFER },
    },
    cognito: {
      freeMau: 10_000,
      essentialsMau: { usd: 0.015, per: 'MAU', source: COGNITO },
      liteMau: [
        { usd: 0.0055, per: 'MAU (10,001 to 100,000)', source: COGNITO },
        { usd: 0.0046, per: 'MAU (100,001 to 1,000,000)', source: COGNITO },
        { usd: 0.00325, per: 'MAU (beyond 1,000,000)', source: COGNITO },
      ],
    },
  },
}

const CLOUDFRONT =
  'https://aws.amazon.com/cloudfront/pricing/ (pay as you go, United States and Europe)'
const WAF = 'https://aws.amazon.com/waf/pricing/ (web ACL up to 1,500 WCU)'
const SECRETS = 'https://aws.amazon.com/secrets-manager/pricing/'

/**
 * The edge's prices (config `edge`, lib/token-service-edge.ts): CloudFront pay-as-you-go in
 * its cheapest geography (the United States, Canada and Europe; the others cost up to about
 * twice as much per request and three times per GB), and AWS WAF. The AWS managed rule groups
 * the web ACL uses (IP reputation, known bad inputs, the common rule set) are billed as
 * rules, with no subscription; the ACL's capacity stays under 1,500 WCU.
 */
export const EDGE_PRICES = {
  cloudFront: {
    httpsRequests: { usd: 0.01, per: '10,000 HTTPS requests', source: CLOUDFRONT },
    transferOutGb: { usd: 0.085, per: 'GB to the internet (first 10 TB)', source: CLOUDFRONT },
    transferToOriginGb: { usd: 0.02, per: 'GB to the origin (request bodies)', source: CLOUDFRONT },
  },
  waf: {
    webAclMonth: { usd: 5.0, per: 'web ACL-month', source: WAF },
    ruleMonth: { usd: 1.0, per: 'rule or rule group-month', source: WAF },
    requests: { usd: 0.6, per: 'million requests', source: WAF },
  },
  secretsManager: { secretMonth: { usd: 0.4, per: 'secret-month', source: SECRETS } },
} as const satisfies Record<string, Record<string, Price>>

/** The default per-second quotas the model checks the load against (all adjustable but Lambda's burst). */
export const QUOTAS = {
  kmsAsymmetric: {
    perSecond: 1_000,
    scope:
      'KMS cryptographic operations with RSA (or ECC) keys, per account and region, shared with every other use in the account (older documents: 500 RSA, 300 ECC)',
    source: 'https://docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html',
  },
  kmsSymmetric: {
    perSecond: 10_000,
    scope:
      'KMS cryptographic operations with symmetric keys, per account and region (5,500 to 100,000 by region)',
    source: 'https://docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html',
  },
  apiGatewayAccount: {
    perSecond: 10_000,
    scope: 'API Gateway requests per account and region, every API together (burst 5,000)',
    source: 'https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html',
  },
  lambdaConcurrency: {
    perSecond: 1_000,
    scope: 'Lambda concurrent executions per account and region (a concurrency, not a rate)',
    source: 'https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html',
  },
  dynamodbNewTableWrites: {
    perSecond: 4_000,
    scope:
      'write request units a second a new on-demand table sustains at once (it doubles its previous peak as traffic grows)',
    source:
      'https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode.html',
  },
  dynamodbNewTableReads: {
    perSecond: 12_000,
    scope: 'read request units a second a new on-demand table sustains at once',
    source:
      'https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode.html',
  },
} as const satisfies Record<string, Quota>
