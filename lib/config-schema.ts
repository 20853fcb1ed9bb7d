import * as logs from 'aws-cdk-lib/aws-logs'
import type { ClientConfig } from '../functions/core/clients.js'
import { type IntegerSetting, SETTINGS } from '../functions/settings.js'
import { ALARM_THRESHOLDS, DEFAULTS } from './defaults.js'
import type { SigningKeySpec } from './signing-keys.js'

/**
 * The config file's schema: every key once, with its type, default, bounds and doc.
 * A key that reaches a function names its setting in functions/settings.ts and takes
 * its bounds and default from there. The config file's type (`TokenServiceConfig`),
 * the props that share its keys (lib/token-service-props.ts), its validation
 * (lib/config.ts) and docs/configuration.md all derive from this one object.
 */

interface Common {
  readonly doc: string
  /** The key must be given; the others may be left out. */
  readonly required?: true
}
export interface StringField extends Common {
  readonly type: 'string'
  readonly default?: string
  /** The form the value must take, and how the docs and the error say it. */
  readonly pattern?: { readonly regex: RegExp; readonly what: string }
}
export interface BooleanField extends Common {
  readonly type: 'boolean'
  readonly default?: boolean | string
}
export interface IntegerField extends Common {
  readonly type: 'integer'
  readonly min: number
  readonly max: number
  readonly default?: number | string
  /** The function setting it sets, whose bounds and default these are. */
  readonly setting?: IntegerSetting
  readonly values?: readonly number[]
}
export interface EnumField extends Common {
  readonly type: 'enum'
  readonly values: readonly string[]
  readonly default: string
}
export interface StringsField extends Common {
  readonly type: 'strings'
  readonly default?: string
}
export interface ListField extends Common {
  readonly type: 'clients' | 'signingKeys'
  readonly default?: string
}
export interface ObjectField extends Common {
  readonly type: 'object'
  readonly fields: Fields
}
export type Field =
  | StringField
  | BooleanField
  | IntegerField
  | EnumField
  | StringsField
  | ListField
  | ObjectField
export type Fields = Readonly<Record<string, Field>>

/** The value a field takes in the config file. */
type ValueOf<F> = F extends { readonly type: 'object'; readonly fields: infer S extends Fields }
  ? ConfigOf<S>
  : F extends { readonly type: 'enum'; readonly values: readonly (infer V)[] }
    ? V
    : F extends { readonly type: 'integer' }
      ? number
      : F extends { readonly type: 'boolean' }
        ? boolean
        : F extends { readonly type: 'string' }
          ? string
          : F extends { readonly type: 'strings' }
            ? readonly string[]
            : F extends { readonly type: 'clients' }
              ? readonly ClientConfig[]
              : F extends { readonly type: 'signingKeys' }
                ? readonly SigningKeySpec[]
                : never

type RequiredKeys<S extends Fields> = {
  [K in keyof S]: S[K] extends { readonly required: true } ? K : never
}[keyof S]

/** The object a schema describes: its required keys, and the others optional. */
export type ConfigOf<S extends Fields> = {
  readonly [K in keyof S as K extends RequiredKeys<S> ? K : never]: ValueOf<S[K]>
} & {
  readonly [K in keyof S as K extends RequiredKeys<S> ? never : K]?: ValueOf<S[K]>
} extends infer O
  ? { [K in keyof O]: O[K] }
  : never

/**
 * An integer key that sets a function setting: bounds, default and doc from
 * functions/settings.ts; a doc or default text of its own where the key says more.
 */
const fromSetting = (
  setting: IntegerSetting,
  own: { readonly doc?: string; readonly default?: string } = {},
) =>
  ({
    type: 'integer',
    doc: own.doc ?? SETTINGS[setting].doc,
    min: SETTINGS[setting].min,
    max: SETTINGS[setting].max,
    default: own.default ?? SETTINGS[setting].default,
    setting,
  }) as const satisfies IntegerField

/** API Gateway's throttling, which reaches no function: its own bounds. */
const limits = (what: string, rate: number, burst: number) =>
  ({
    type: 'object',
    doc: `API Gateway throttling of ${what}: steady requests per second and burst.`,
    fields: {
      rateLimit: {
        type: 'integer',
        doc: 'Requests per second.',
        min: 1,
        max: 100_000,
        default: rate,
      },
      burstLimit: { type: 'integer', doc: 'Burst.', min: 1, max: 100_000, default: burst },
    },
  }) as const satisfies ObjectField

/** Reserved concurrency of one function: Lambda's account quota is 1,000 by default. */
const reserved = (name: string) =>
  ({
    type: 'integer',
    min: 1,
    max: 10_000,
    default: 'none (the account’s unreserved pool)',
    doc: `Concurrent executions reserved for \`${name}\`: guaranteed to it, and its ceiling.`,
  }) as const satisfies IntegerField

/** An alarm threshold per thousand (requests, or refreshes). */
const perThousand = (value: number, doc: string) =>
  ({ type: 'integer', min: 1, max: 1000, default: value, doc }) as const satisfies IntegerField

const RETENTION_DAYS = Object.values(logs.RetentionDays).filter(
  (value): value is number => typeof value === 'number' && value > 0,
)

/** Every key of the config file, once. */
export const CONFIG_SCHEMA = {
  stackName: { type: 'string', doc: 'The CloudFormation stack name.', default: 'TokenService' },
  clients: {
    type: 'clients',
    required: true,
    doc: 'The OAuth clients (docs/design.md "Clients"): `client_id`, `type`, `audience`, `allowed_origins`, `scopes`, token lifetimes, `reuse_grace_seconds`, `cookie_mode`. Unknown client keys are refused.',
  },
  account: {
    type: 'string',
    pattern: { regex: /^\d{12}$/, what: 'a 12-digit AWS account id' },
    default: 'unset: the CLI’s account (synth warns, so `--strict` refuses the stack)',
    doc: 'The AWS account the stack deploys to (the stack’s `env`). Pin it with `region`, so that a deploy with another profile’s credentials fails instead of building a second service in the wrong account.',
  },
  region: {
    type: 'string',
    pattern: { regex: /^[a-z]{2}(-[a-z]+)+-\d$/, what: 'an AWS region such as `eu-west-1`' },
    default: 'unset: the CLI’s region (synth warns, so `--strict` refuses the stack)',
    doc: 'The AWS region the stack deploys to (the stack’s `env`). `edge` needs it: the web ACL of a CloudFront distribution lives in us-east-1.',
  },
  issuer: {
    type: 'string',
    doc: 'The `iss` claim: an https URL with no trailing slash.',
    default: '`https://<domain.domainName>`, else the API endpoint',
  },
  algorithm: {
    type: 'enum',
    values: SETTINGS.SIGNING_ALG.values,
    default: DEFAULTS.algorithm,
    doc: 'KMS `RSA_2048` (RS256, the only one the native JWT authorizer accepts) or `ECC_NIST_P256` (ES256). A KeySpec cannot change in place: a new algorithm needs a new stack.',
  },
  signing: {
    type: 'enum',
    values: ['kms', 'envelope'] as const,
    default: DEFAULTS.signing,
    doc: 'How keys added from now on sign. `kms`: a KMS `Sign` per token, the private key never leaves KMS; KMS allows 1,000 RSA (or ECC) signing requests a second per account and region, shared with the account. `envelope`: KMS generates the key pair and keeps the private key wrapped under a symmetric key of the stack; `login` and `token` unwrap it once per container and sign in memory, with no KMS call per token. A listed key keeps its mode: to switch, rotate to a new key (docs/operations.md "Key rotation"). Trade-off: docs/security.md "Signing keys: KMS or envelope"; when to switch: docs/capacity.md.',
  },
  signingKeys: {
    type: 'signingKeys',
    doc: 'The KMS signing keys, `{ id, state }` with exactly one `active`; the others `retiring` (published, never signing). See docs/operations.md "Key rotation".',
    default: '`[{ id: "k1", state: "active" }]`',
  },
  signingKeysLock: {
    type: 'string',
    doc: 'The signing-key ledger file that synth checks each key change against, or `off`.',
    default: 'signing-keys.lock.json',
  },
  authorizer: {
    type: 'enum',
    values: ['lambda', 'jwt'],
    default: DEFAULTS.authorizer,
    doc: 'What protects `/me` and `/sessions`: our Lambda authorizer, or API Gateway’s native JWT authorizer (RS256 only, no strict mode).',
  },
  strictRevocation: {
    type: 'boolean',
    default: DEFAULTS.strictRevocation,
    doc: 'The Lambda authorizer also checks that the session is live, so that logout ends access within seconds.',
  },
  // API Gateway would cache up to 3600 s, but the answer cache never exceeds the skew
  // (SETTING_RULES.answerCache), whose own bound is 300: AUTHORIZER_CACHE_SECONDS's bounds.
  authorizerCacheTtlSeconds: fromSetting('AUTHORIZER_CACHE_SECONDS', {
    default:
      'the clock skew (30) capped at the shortest access-token lifetime; 0 with strictRevocation or while a client may use DPoP',
    doc: 'How long API Gateway caches the Lambda authorizer’s answer per token; at most `authorizerSettings.clockSkewSeconds`, so that a cached Allow never outlives the token’s `exp` plus the skew (hence at most 300, the skew’s own bound, though API Gateway would take 3600). Must be 0 while a client may use DPoP (its `dpop` is not `disabled`): a cached answer would serve a request whose proof was never checked.',
  }),
  throttle: limits('every route', DEFAULTS.throttle.rateLimit, DEFAULTS.throttle.burstLimit),
  tokenThrottle: limits(
    '`POST /token` (the refreshes), within `throttle`; a capacity guard sized at twice the busy-hour refresh rate (docs/operations.md "Throttles")',
    DEFAULTS.tokenThrottle.rateLimit,
    DEFAULTS.tokenThrottle.burstLimit,
  ),
  loginThrottle: limits(
    '`POST /login` (scrypt costs a vCPU per call), within `throttle`; a capacity guard sized at five times the busy-hour login rate: one client is held back by the edge’s per-IP rule and the per-username back-off, not by this limit',
    DEFAULTS.loginThrottle.rateLimit,
    DEFAULTS.loginThrottle.burstLimit,
  ),
  passwordThrottle: limits(
    '`POST /me/password` (scrypt twice), within `throttle`; with the native JWT authorizer the route keeps the stage limit only',
    DEFAULTS.passwordThrottle.rateLimit,
    DEFAULTS.passwordThrottle.burstLimit,
  ),
  removalPolicy: {
    type: 'enum',
    values: ['retain', 'destroy'],
    default: 'retain',
    doc: 'What happens to the table, the keys and the logs when they leave the stack. `retain` also turns on the stack’s termination protection.',
  },
  reservedConcurrency: {
    type: 'object',
    doc: 'Reserved concurrency per function, off by default. A reservation guarantees a function its share of the account’s concurrency (a burst of logins cannot starve the refreshes) and caps it there; what one function reserves, the others lose. Sizing: docs/capacity.md "Concurrency".',
    fields: {
      login: reserved('login'),
      token: reserved('token'),
      revoke: reserved('revoke'),
      jwks: reserved('jwks'),
      sessions: reserved('sessions'),
      password: reserved('password'),
      me: reserved('me'),
      authorizer: reserved('the Lambda authorizer'),
      forwarder: reserved('the security events’ forwarder'),
    },
  },
  tableWarmThroughput: {
    type: 'object',
    doc: 'Warm throughput of the table (`WarmThroughput` of the CfnTable), off by default: the read and write units a second it serves at once, without splitting partitions first. A new on-demand table starts at 12,000 reads and 4,000 writes a second; raise it ahead of a launch or a migration (docs/capacity.md "Warm throughput"). An in-place update: the table stays.',
    fields: {
      readUnitsPerSecond: {
        type: 'integer',
        min: 12_000,
        max: 10_000_000,
        default: 'DynamoDB’s: 12,000 for a new on-demand table',
        doc: 'Read units a second.',
      },
      writeUnitsPerSecond: {
        type: 'integer',
        min: 4_000,
        max: 10_000_000,
        default: 'DynamoDB’s: 4,000 for a new on-demand table',
        doc: 'Write units a second.',
      },
    },
  },
  tableEncryption: {
    type: 'enum',
    values: ['aws-managed', 'customer-managed'],
    default: 'aws-managed',
    doc: 'The table’s encryption (it holds the password hashes): the AWS-managed key `aws/dynamodb` (its use in CloudTrail, no key to run), or a key of its own (`TableKey`: rotated yearly, administration apart from use, about $1 a month plus requests). Switching is an in-place update: the table stays.',
  },
  deletionProtection: {
    type: 'boolean',
    default: 'true unless removalPolicy is destroy',
    doc: 'DynamoDB deletion protection on the table.',
  },
  logRetentionDays: {
    type: 'integer',
    min: 1,
    max: 9999,
    values: RETENTION_DAYS,
    default: DEFAULTS.logRetention,
    doc: 'Retention of the function and access logs, one of CloudWatch Logs’ values.',
  },
  logSamplePercent: {
    type: 'integer',
    min: 0,
    max: 100,
    default: DEFAULTS.logSamplePercent,
    doc: 'Percent of the invocations that log at debug, the success lines included (Powertools logger sampling, `POWERTOOLS_LOGGER_SAMPLE_RATE`). Failures and refusals are always logged; successes are always counted in the metrics and written as security events. Cost: docs/operations.md "Logs and tracing".',
  },
  tracing: {
    type: 'boolean',
    default: DEFAULTS.tracing,
    doc: 'Lambda active tracing (X-Ray), with the DynamoDB, KMS and EventBridge calls as subsegments. Lambda samples the first request each second and 5% of the rest, and honours no X-Ray sampling rule: this key turns it on or off.',
  },
  alarmTopicArn: {
    type: 'string',
    doc: 'An SNS topic every alarm notifies, when it fires and when it is OK again.',
    default: 'none',
  },
  alarms: {
    type: 'object',
    doc: 'Alarm thresholds: rates, not counts, so that they hold from a quiet hour to a million users. Why each default: docs/operations.md "Alarms".',
    fields: {
      serverErrorsPerThousand: perThousand(
        ALARM_THRESHOLDS.serverErrorsPerThousand,
        'Requests answered 5xx, per 1,000 requests, over two 5-minute periods running.',
      ),
      throttledPerThousand: perThousand(
        ALARM_THRESHOLDS.throttledPerThousand,
        'Requests answered 429 (API Gateway throttles and the login back-off), per 1,000 requests, over two 5-minute periods running.',
      ),
      minRequests: {
        type: 'integer',
        min: 1,
        max: 1_000_000,
        default: ALARM_THRESHOLDS.minRequests,
        doc: 'The least denominator of the per-request shares, per 5 minutes: in a quiet period a share is taken of this many, so that a handful of errors does not page.',
      },
      failedLoginBand: {
        type: 'integer',
        min: 1,
        max: 10,
        default: ALARM_THRESHOLDS.failedLoginBand,
        doc: 'Width of the anomaly band of failed logins, in standard deviations of their own history: above it, two 5-minute periods running, credential stuffing is likely.',
      },
      reusePerThousandRefreshes: perThousand(
        ALARM_THRESHOLDS.reusePerThousandRefreshes,
        'Refresh-token reuses detected (enforced), per 1,000 refreshes, in 5 minutes; in a quiet period taken of `minRefreshes`.',
      ),
      minRefreshes: {
        type: 'integer',
        min: 1,
        max: 1_000_000,
        default: ALARM_THRESHOLDS.minRefreshes,
        doc: 'The least denominator of the reuse rate, per 5 minutes: with the defaults, one reuse pages in a quiet period.',
      },
      latencyP99Ms: {
        type: 'integer',
        min: 10,
        max: 30_000,
        default: ALARM_THRESHOLDS.latencyP99Ms,
        doc: 'p99 latency of each route but those that run scrypt, in ms, over two 5-minute periods running.',
      },
      passwordLatencyP99Ms: {
        type: 'integer',
        min: 10,
        max: 30_000,
        default: ALARM_THRESHOLDS.passwordLatencyP99Ms,
        doc: 'p99 latency of `POST /login` and `POST /me/password` (scrypt), in ms.',
      },
      lambdaErrorsPerThousand: perThousand(
        ALARM_THRESHOLDS.lambdaErrorsPerThousand,
        'Function invocations that failed without an answer (crash, timeout, init error), per 1,000 requests.',
      ),
      lambdaThrottlesPerThousand: perThousand(
        ALARM_THRESHOLDS.lambdaThrottlesPerThousand,
        'Function invocations Lambda throttled, per 1,000 requests.',
      ),
      kmsThrottlesPerThousand: perThousand(
        ALARM_THRESHOLDS.kmsThrottlesPerThousand,
        'KMS calls that came back throttled (each a 503), per 1,000 requests.',
      ),
      dynamodbThrottlesPerThousand: perThousand(
        ALARM_THRESHOLDS.dynamodbThrottlesPerThousand,
        'DynamoDB requests throttled (the SDK retries them), per 1,000 API requests.',
      ),
      nearTimeoutPercent: {
        type: 'integer',
        min: 50,
        max: 100,
        default: ALARM_THRESHOLDS.nearTimeoutPercent,
        doc: 'p99 duration of each function, in percent of its timeout, over two 5-minute periods running: one alarm per function. At 80 the slowest 1% of calls has a fifth of its time left; beyond, they answer 503 (250 ms before the timeout) or fail.',
      },
    },
  },
  domain: {
    type: 'object',
    doc: 'Serve the API on a custom domain; the issuer becomes `https://<domainName>`.',
    fields: {
      domainName: { type: 'string', required: true, doc: 'For example `auth.example.com`.' },
      certificateArn: {
        type: 'string',
        required: true,
        doc: 'An ACM certificate for it, in the stack’s region.',
      },
      hostedZoneId: {
        type: 'string',
        doc: 'A Route 53 zone for A/AAAA alias records.',
        default: 'no records',
      },
      hostedZoneName: {
        type: 'string',
        doc: 'That zone’s name, e.g. `example.com`; goes with hostedZoneId.',
        default: 'none',
      },
    },
  },
  edge: {
    type: 'object',
    doc: 'Off by default. CloudFront in front of the HTTP API, behind an AWS WAF web ACL: a rate-based rule per IP on `/login`, `/token` and `/me/password`, and AWS managed rule groups (IP reputation, known bad inputs, the common rule set). The issuer becomes `https://<distribution>.cloudfront.net` (unless `issuer` is set); requests straight to the execute-api endpoint get 403 (CloudFront proves itself with a secret header generated in Secrets Manager at deploy). Needs `region`: the web ACL lives in us-east-1, in a companion stack `<stackName>-EdgeWaf` when the service is elsewhere. Not with `domain` yet. Cost: docs/capacity.md "The edge"; operations: docs/operations.md "Edge".',
    fields: {
      waf: {
        type: 'object',
        required: true,
        doc: 'The web ACL.',
        fields: {
          ratePerIp: {
            type: 'integer',
            min: 100,
            max: 2_000_000_000,
            default: DEFAULTS.edgeRatePerIp,
            doc: 'Requests one IP address may send to `/login`, `/token` and `/me/password` together in 5 minutes (WAF’s window); beyond, WAF answers 429 `slow_down` until the address falls below. The default is about 3 a second: one user refreshes once in 15 minutes, and a NAT address shared by a few hundred active users stays under it; one address trying passwords gets 1,000 tries in 5 minutes across all usernames (each username has its own back-off).',
          },
        },
      },
    },
  },
  canary: {
    type: 'object',
    doc: 'Off by default. A CloudWatch Synthetics canary that fetches discovery and JWKS at the issuer (the public hostname: the custom domain or the edge), checks that they name the issuer and hold keys, and an alarm (`DiscoveryCanary`) when it fails or does not run: the per-request alarms stay silent while DNS, the certificate or CloudFront keep every request away. Its code is inline in the template. About $0.0012 a run (Synthetics pricing, us-east-1): $10.37 a month every 5 minutes (8,640 runs), plus its S3 use.',
    fields: {
      everyMinutes: {
        type: 'integer',
        min: 1,
        max: 60,
        default: 5,
        doc: 'Minutes between runs. The alarm fires after two failed (or missing) 5-minute periods, or two runs when they are rarer.',
      },
    },
  },
  jwksMaxAgeSeconds: fromSetting('JWKS_MAX_AGE_SECONDS'),
  tokenBackdateSeconds: fromSetting('TOKEN_BACKDATE_SECONDS'),
  loginBackoff: {
    type: 'object',
    doc: 'The login back-off per username (docs/design.md "Login protection").',
    fields: {
      freeFailures: fromSetting('LOGIN_FREE_FAILURES'),
      baseSeconds: fromSetting('LOGIN_BACKOFF_BASE_SECONDS'),
      maxSeconds: fromSetting('LOGIN_BACKOFF_MAX_SECONDS'),
      failureWindowSeconds: fromSetting('LOGIN_FAILURE_WINDOW_SECONDS'),
    },
  },
  authorizerSettings: {
    type: 'object',
    doc: 'The Lambda authorizer’s verification settings; `audiences` also sets the native JWT authorizer’s.',
    fields: {
      clockSkewSeconds: fromSetting('AUTHORIZER_SKEW_SECONDS'),
      sessionCacheSeconds: fromSetting('AUTHORIZER_SESSION_CACHE_SECONDS'),
      maxTokenBytes: fromSetting('AUTHORIZER_MAX_TOKEN_BYTES'),
      audiences: {
        type: 'strings',
        doc: SETTINGS.AUTHORIZER_AUDIENCES.doc,
        default: 'every client’s audience',
      },
    },
  },
  securityEvents: {
    type: 'object',
    doc: 'The security events (docs/events.md): each is written with its change as an outbox item in the table, whatever this says.',
    fields: {
      bus: {
        type: 'boolean',
        default: DEFAULTS.securityEvents.bus,
        doc: 'A custom EventBridge bus the table’s stream feeds through the forwarder function, with a dead-letter queue and alarms (docs/operations.md "Security events"). Off: no stream, forwarder or bus.',
      },
    },
  },
  passwordBreachCheck: {
    type: 'object',
    doc: 'Off by default. A breached-password range API (HIBP-compatible, k-anonymity: only the first 5 hex characters of a password’s SHA-1 are sent) that `POST /me/password` checks every new password against, besides the offline list of common passwords (docs/security.md "Passwords and usernames"). When it cannot be reached, the password is accepted and counted in `BreachCheckUnavailable`.',
    fields: {
      url: {
        type: 'string',
        required: true,
        doc: 'The API’s base URL, https, for example `https://api.pwnedpasswords.com`; required with `passwordBreachCheck`.',
      },
      timeoutMs: fromSetting('PASSWORD_BREACH_CHECK_TIMEOUT_MS'),
    },
  },
  regions: {
    type: 'strings',
    doc: 'Deploy in several regions, active-active (docs/multi-region.md): at least 2 distinct AWS region names, the first the primary (it defines the global table and the multi-Region keys). One stack per region, each named `stackName` in its own region; `cdk deploy` names the primary’s `stackName` (the stack deployed before) and the others’ `<stackName>-<region>`. Only signing keys added while `regions` is set are multi-Region (the ledger records it; `envelope` keys: wrapped under a multi-Region symmetric key, their pairs created in the primary, docs/multi-region.md "Envelope keys"): a region other than the primary is synthesized once every listed key is. Moving a deployed stack: docs/operations.md "Moving to several regions".',
    default: 'one region: the CLI’s, as before (an `AWS::DynamoDB::Table`, single-Region keys)',
  },
  failover: {
    type: 'enum',
    values: ['relogin', 'adopt'],
    default: 'relogin',
    doc: 'With `regions`: what a refresh gets when its session’s home region cannot be reached (docs/multi-region.md "When a region is lost"). `relogin`: `400 invalid_grant`, `home region unavailable`, which the client SDK turns into a new login in the region that answered; nothing is read or written, and reuse detection stays exact. `adopt`: if the home is declared lost (`npm run regions -- lost <region>`, in a healthy region), the region that answered takes the session over (a rotation that moves its home there); if not, `503 temporarily_unavailable` with `Retry-After`, and the session is kept. A session two regions decided apart is ended when the replicas converge (the fork consumer, a function of its own), with a `session.revoked` event (`forked`). Not with `tableMigration`.',
  },
  tableName: {
    type: 'string',
    doc: 'The table’s physical name. With `regions`, every region’s stack names the global table by it; when moving a deployed stack to several regions, set it to the deployed table’s name (docs/operations.md "Moving to several regions"). A change replaces the table: set it once.',
    default: 'generated by CloudFormation with one region; `<stackName>-table` with `regions`',
  },
  tableMigration: {
    type: 'enum',
    values: ['none', 'detach', 'import'],
    default: 'none',
    doc: 'A step of moving a deployed single-region table into a global table (docs/operations.md "Moving to several regions"), with `regions` and `tableName` set: `detach` leaves the (retained) table out of the stack and names it by `tableName`; `import` declares it as an `AWS::DynamoDB::GlobalTable` with the primary replica only, for `cdk import`; `none` (after the import) adds the other regions’ replicas.',
  },
} as const satisfies Fields

/** The config file (`token-service.config.ts`), as the schema describes it. */
export type TokenServiceConfig = ConfigOf<typeof CONFIG_SCHEMA>
