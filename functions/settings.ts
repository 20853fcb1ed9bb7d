/**
 * Every setting a deployed function reads, defined once: its environment
 * variable, default, bounds, which functions read it, and its doc. The Lambda
 * config loader (functions/config.ts), the CDK stack's synth-time checks
 * (lib/) and the configuration reference (docs/configuration.md) all read
 * this table.
 */

/** The deployed functions (functions/routes.ts): one bundle each. */
export type LambdaName =
  | 'login'
  | 'token'
  | 'revoke'
  | 'jwks'
  | 'sessions'
  | 'password'
  | 'me'
  | 'authorizer'
  | 'authorizerStrict'
  | 'forwarder'
  | 'forks'

interface Common {
  /** What it means, for the configuration reference. */
  readonly doc: string
  /** The functions whose environment carries it. */
  readonly functions: readonly LambdaName[]
}

export type Setting =
  | (Common & {
      readonly type: 'integer'
      readonly default: number
      readonly min: number
      readonly max: number
      readonly unit?: string
    })
  | (Common & { readonly type: 'string'; readonly default?: string })
  | (Common & { readonly type: 'list'; readonly default?: string })
  | (Common & {
      readonly type: 'enum'
      readonly values: readonly string[]
      readonly default: string
    })

const HTTP: readonly LambdaName[] = [
  'login',
  'token',
  'revoke',
  'jwks',
  'sessions',
  'password',
  'me',
]
const SIGNING: readonly LambdaName[] = ['login', 'token', 'jwks']
const TABLE: readonly LambdaName[] = [
  'login',
  'token',
  'revoke',
  'sessions',
  'password',
  'authorizerStrict',
]
const AUTHORIZERS: readonly LambdaName[] = ['authorizer', 'authorizerStrict']
const AWS_CALLERS: readonly LambdaName[] = [
  'login',
  'token',
  'revoke',
  'jwks',
  'sessions',
  'password',
  'authorizer',
  'authorizerStrict',
  'forwarder',
  'forks',
]
/** A password change's wrong current password counts as a failed login: one back-off for both. */
const PASSWORD_CHECKS: readonly LambdaName[] = ['login', 'password']

export const SETTINGS = {
  ISSUER: {
    type: 'string',
    doc: 'The `iss` claim and the base URL of the discovery documents: an absolute URL with no query, fragment or trailing slash. Also the `source` of the security events. The authorizers refuse to start unless it is https (http only on localhost, 127.0.0.1 or [::1], for local mode).',
    functions: [...HTTP, ...AUTHORIZERS, 'forwarder'],
  },
  EDGE_ORIGIN_SECRET: {
    type: 'string',
    doc: 'Behind the edge (CloudFront and AWS WAF, config key `edge`): the value CloudFront adds as the `X-Origin-Verify` header to every request it forwards. A request without it went around the edge to the execute-api endpoint, and gets 403 `access_denied`. The stack sets it from a Secrets Manager secret it generates; unset, no check.',
    functions: HTTP,
  },
  REQUEST_ORIGIN: {
    type: 'string',
    doc: 'The scheme and host clients call, when it is not the host API Gateway sees: the edge’s (`https://<distribution>`). A request’s URL, and so a DPoP proof’s `htu`, is this plus the path. Default: the host of the request as API Gateway received it.',
    functions: [...HTTP, ...AUTHORIZERS],
  },
  CLIENTS: {
    type: 'string',
    doc: 'The OAuth clients as a JSON array (docs/design.md "Clients"). Their `allowed_origins` make up the CORS allow-list.',
    functions: HTTP,
  },
  TABLE_NAME: {
    type: 'string',
    doc: 'The DynamoDB table (for `jwks`, only with envelope signing keys: their public keys are there).',
    functions: [...TABLE, 'jwks', 'forks'],
  },
  OUTBOX_REGION: {
    type: 'string',
    doc: 'With `regions` (docs/multi-region.md): the region each security event written here is marked with (the outbox item’s `region`), so that only this region’s forwarder sends it, and a replicated outbox item is not forwarded again. Unset with one region.',
    functions: ['login', 'token', 'revoke', 'sessions', 'password', 'forks'],
  },
  REGIONS: {
    type: 'list',
    doc: 'With `regions` (docs/multi-region.md): every region, comma-separated, the primary first. The primary is the home of `rt1_` refresh tokens (issued with one region). Unset with one region.',
    functions: ['login', 'token', 'revoke', 'sessions', 'forks'],
  },
  HOME_REGION: {
    type: 'string',
    doc: 'With `regions`: the region this function runs in. A login here homes its session here (the refresh token is `rt2_<region>.…`); a refresh or a revocation homed in another region is forwarded there. Unset with one region.',
    functions: ['login', 'token', 'revoke', 'sessions', 'forks'],
  },
  FAILOVER: {
    type: 'enum',
    values: ['relogin', 'adopt'],
    default: 'relogin',
    doc: 'With `regions`: what a refresh gets when its home region cannot be reached. `relogin`: `400 invalid_grant` (`home region unavailable`, refusal `home_unreachable`), which the client SDK turns into a new login in the region that answered. `adopt`: if the home is declared lost (`npm run regions -- lost <region>`), this region takes the session over; if not, `503 temporarily_unavailable` with `Retry-After`.',
    functions: ['token', 'forks'],
  },
  HOME_FUNCTION_NAME: {
    type: 'string',
    doc: 'With `regions`: this function’s name, the same in every region (`<stack name>-token`, `-revoke`, `-sessions`, `-forks`): a refresh or revocation homed in another region is forwarded to it there (`lambda:Invoke`), and a forked session’s end to its converged home’s fork consumer.',
    functions: ['token', 'revoke', 'sessions', 'forks'],
  },
  HOME_FORWARD_TIMEOUT_MS: {
    type: 'integer',
    default: 3000,
    min: 200,
    max: 10_000,
    unit: 'ms',
    doc: 'With `regions`: how long a forwarded refresh or revocation waits for its home region before the home counts as unreachable (a refresh: `FAILOVER`; a revocation or a fork’s end: written here).',
    functions: ['token', 'revoke', 'sessions', 'forks'],
  },
  EVENT_BUS_NAME: {
    type: 'string',
    doc: 'The EventBridge bus the forwarder puts the security events on (docs/design.md "Security events").',
    functions: ['forwarder'],
  },
  SIGNING_KEY_ID: {
    type: 'string',
    doc: 'The active signing key: a KMS key (ARN, id or alias) that signs with `kms:Sign`, or `envelope:<id>`, a key pair KMS generated that signs in memory (docs/design.md "Keys").',
    functions: SIGNING,
  },
  ENVELOPE_KEY_ID: {
    type: 'string',
    doc: 'The symmetric KMS key that wraps the private keys of the envelope signing keys (ARN, id or alias). The stack sets it when a listed envelope key was added without `regions` (with one region, whenever a key is an envelope key).',
    functions: SIGNING,
  },
  ENVELOPE_MULTI_REGION_KEY_ID: {
    type: 'string',
    doc: 'With `regions`: this region’s copy of the multi-Region symmetric KMS key that wraps the private keys of the envelope signing keys added with `regions` (docs/multi-region.md "Envelope keys"). New pairs are generated under it when it is set; each stored pair records which key wrapped it.',
    functions: SIGNING,
  },
  ENVELOPE_KEY_PAIR_REGION: {
    type: 'string',
    doc: 'With `regions`, in a region other than the primary, with an envelope key: the primary region. A pair this region’s replica does not have yet is read from the primary’s replica, and created there (a conditional write), so that every region signs with the one pair of each key id.',
    functions: SIGNING,
  },
  SIGNING_KEY_OWNER: {
    type: 'string',
    doc: 'The owner named in each envelope key’s encryption context, `<stack>/<construct id>`: KMS unwraps a private key only with it and the key’s id.',
    functions: SIGNING,
  },
  GRACE_KEY_ID: {
    type: 'string',
    doc: 'The symmetric KMS key that wraps the data keys sealing grace children (ARN, id or alias): the server’s half of each seal, which no copy of the table holds.',
    functions: ['token'],
  },
  RETIRING_KEY_IDS: {
    type: 'list',
    default: '',
    doc: 'Comma-separated keys still published in the JWKS, never signing: KMS keys or `envelope:<id>`.',
    functions: ['jwks'],
  },
  SIGNING_ALG: {
    type: 'enum',
    values: ['RS256', 'ES256'],
    default: 'RS256',
    doc: '`RS256` (KMS `RSA_2048`) or `ES256` (KMS `ECC_NIST_P256`).',
    functions: SIGNING,
  },
  DPOP_NONCE_KEY_ID: {
    type: 'string',
    doc: 'The KMS HMAC key (`HMAC_256`) the DPoP nonces are derived from (`GenerateMac`, once per container). The stack creates it and sets this when a client has `dpop_nonce`.',
    functions: ['login', 'token'],
  },
  TOKEN_BACKDATE_SECONDS: {
    type: 'integer',
    default: 5,
    min: 0,
    max: 60,
    unit: 's',
    doc: '`iat` and `nbf` of the access tokens are set this early, for verifiers whose clock runs fast.',
    functions: ['login', 'token'],
  },
  JWKS_MAX_AGE_SECONDS: {
    type: 'integer',
    default: 300,
    min: 0,
    max: 86_400,
    unit: 's',
    doc: '`Cache-Control: max-age` of the JWKS and the discovery documents.',
    functions: ['jwks'],
  },
  AWS_CALL_TIMEOUT_MS: {
    type: 'integer',
    default: 1000,
    min: 50,
    max: 30_000,
    unit: 'ms',
    doc: 'Per-attempt timeout of each AWS call.',
    functions: AWS_CALLERS,
  },
  JWKS_FETCH_TIMEOUT_MS: {
    type: 'integer',
    default: 3000,
    min: 100,
    max: 4000,
    unit: 'ms',
    doc: 'Timeout of the authorizer’s JWKS fetch. The jwks function it reaches may be cold (its own start and key reads), so it is longer than an AWS call’s; at most 4 s, inside the authorizer’s own 5 s.',
    functions: AUTHORIZERS,
  },
  AWS_MAX_ATTEMPTS: {
    type: 'integer',
    default: 2,
    min: 1,
    max: 5,
    doc: 'Attempts per AWS call, the first included.',
    functions: AWS_CALLERS,
  },
  LOGIN_FREE_FAILURES: {
    type: 'integer',
    default: 3,
    min: 0,
    max: 100,
    doc: 'Failed logins in a row for one username before any wait; a wrong `current_password` at `POST /me/password` counts as one.',
    functions: PASSWORD_CHECKS,
  },
  LOGIN_BACKOFF_BASE_SECONDS: {
    type: 'integer',
    default: 1,
    min: 1,
    max: 3600,
    unit: 's',
    doc: 'The first wait after the free failures, doubled by each further failure.',
    functions: PASSWORD_CHECKS,
  },
  LOGIN_BACKOFF_MAX_SECONDS: {
    type: 'integer',
    default: 900,
    min: 1,
    max: 86_400,
    unit: 's',
    doc: 'The longest wait.',
    functions: PASSWORD_CHECKS,
  },
  LOGIN_FAILURE_WINDOW_SECONDS: {
    type: 'integer',
    default: 86_400,
    min: 60,
    max: 30 * 86_400,
    unit: 's',
    doc: 'Failures are forgotten this long after the last one; at least `LOGIN_BACKOFF_MAX_SECONDS`.',
    functions: PASSWORD_CHECKS,
  },
  PASSWORD_BREACH_CHECK_URL: {
    type: 'string',
    doc: 'A breached-password range API, HIBP-compatible (`GET <url>/range/<first 5 hex characters of the SHA-1>`), that every new password at `POST /me/password` is checked against; https (http only on a loopback host). Unset, the default: no such check, only the offline list of common passwords. When it cannot be reached, the password is accepted and counted in `BreachCheckUnavailable`.',
    functions: ['password'],
  },
  PASSWORD_BREACH_CHECK_TIMEOUT_MS: {
    type: 'integer',
    default: 1500,
    min: 100,
    max: 10_000,
    unit: 'ms',
    doc: 'How long the password change waits for the breached-password range API before it accepts the password without it.',
    functions: ['password'],
  },
  JWKS_URI: {
    type: 'string',
    doc: 'Where the Lambda authorizer fetches the verification keys: https (http only on a loopback host), a body of at most 64 KiB, read no further. Default: `<ISSUER>/.well-known/jwks.json`.',
    functions: AUTHORIZERS,
  },
  AUTHORIZER_AUDIENCES: {
    type: 'list',
    doc: 'Comma-separated `aud` values the authorizer accepts (the stack sets every client’s audience).',
    functions: AUTHORIZERS,
  },
  AUTHORIZER_SKEW_SECONDS: {
    type: 'integer',
    default: 30,
    min: 0,
    max: 300,
    unit: 's',
    doc: 'Clock skew the authorizer allows on `exp`, `nbf` and `iat`.',
    functions: AUTHORIZERS,
  },
  AUTHORIZER_MAX_TOKEN_BYTES: {
    type: 'integer',
    default: 4096,
    min: 1024,
    max: 16_384,
    unit: 'bytes',
    doc: 'Longer tokens are refused unread.',
    functions: AUTHORIZERS,
  },
  AUTHORIZER_MAX_TOKEN_LIFETIME_SECONDS: {
    type: 'integer',
    // The longest client `access_token_ttl_seconds` (3600) plus the longest
    // TOKEN_BACKDATE_SECONDS (60): unset, it refuses no token the service issues.
    default: 3660,
    min: 60,
    max: 3660,
    unit: 's',
    doc: 'The longest `exp − iat` accepted, beyond the skew. The stack sets the longest client `access_token_ttl_seconds` plus `TOKEN_BACKDATE_SECONDS`.',
    functions: AUTHORIZERS,
  },
  AUTHORIZER_CACHE_SECONDS: {
    type: 'integer',
    default: 0,
    min: 0,
    max: 300,
    unit: 's',
    doc: 'How long API Gateway caches the authorizer’s answers (the stack sets its `resultsCacheTtl`), at most `AUTHORIZER_SKEW_SECONDS`. A token is allowed until `exp` plus the skew minus this, so that no cached Allow outlives `exp` plus the skew.',
    functions: AUTHORIZERS,
  },
  AUTHORIZER_SESSION_CACHE_SECONDS: {
    type: 'integer',
    default: 5,
    min: 0,
    max: 60,
    unit: 's',
    doc: 'Strict mode: how long a container reuses a session’s verdict, refusals included. At worst, logout ends access this long after, plus API Gateway’s cache of the answer (0 by default in strict mode, at most 5 s).',
    functions: ['authorizerStrict'],
  },
} as const satisfies Record<string, Setting>

export type SettingName = keyof typeof SETTINGS
export type IntegerSetting = {
  [K in SettingName]: (typeof SETTINGS)[K] extends { type: 'integer' } ? K : never
}[SettingName]

/** The settings a function's environment carries. */
export const settingsOf = (fn: LambdaName): SettingName[] =>
  (Object.keys(SETTINGS) as SettingName[]).filter((name) =>
    (SETTINGS[name].functions as readonly LambdaName[]).includes(fn),
  )

/** Why a value is outside its setting's bounds, or undefined when it is inside. */
export function outOfBounds(name: IntegerSetting, value: number): string | undefined {
  const { min, max } = SETTINGS[name]
  if (Number.isInteger(value) && value >= min && value <= max) return undefined
  return `${name} must be an integer from ${min} to ${max}, got ${String(value)}`
}

/**
 * The rules between settings, each stated once: the loader (functions/config.ts) checks
 * them at cold start, naming the variables; the stack (lib/) at synth, naming its props.
 */
export const SETTING_RULES = {
  /** `LOGIN_FAILURE_WINDOW_SECONDS` ≥ `LOGIN_BACKOFF_MAX_SECONDS`. */
  failureWindow: {
    holds: (v: { readonly windowSeconds: number; readonly maxSeconds: number }) =>
      v.windowSeconds >= v.maxSeconds,
    why: 'a failure must not be forgotten during its own wait',
  },
  /** `AUTHORIZER_CACHE_SECONDS` ≤ `AUTHORIZER_SKEW_SECONDS`. */
  answerCache: {
    holds: (v: { readonly cacheSeconds: number; readonly skewSeconds: number }) =>
      v.cacheSeconds <= v.skewSeconds,
    why: "a cached Allow would outlive its token's exp by more than the skew",
  },
} as const

/**
 * The issuer rule (`ISSUER`): an absolute URL with no query, fragment or trailing slash,
 * since verifiers compare the `iss` claim with it character by character. Where it must
 * be served to verifiers and API Gateway (the stack), https too; local mode serves http.
 * Undefined when `issuer` keeps the rule, else what it must be.
 */
export function issuerProblem(
  issuer: string,
  { https }: { readonly https: boolean },
): string | undefined {
  const rule = `${https ? 'an https' : 'an absolute'} URL with no query, fragment or trailing slash`
  let url: URL
  try {
    url = new URL(issuer)
  } catch {
    return rule
  }
  if ((https && url.protocol !== 'https:') || url.search || url.hash || issuer.endsWith('/')) {
    return rule
  }
  return undefined
}
