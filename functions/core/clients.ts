/**
 * Clients are configuration, not data: the stack passes them as props, local
 * mode reads them from a file. `parseClients` validates them and fills in the
 * defaults, failing with a message that names the bad field.
 */
export interface Client {
  readonly clientId: string
  readonly type: 'spa' | 'native'
  /** `aud` of the access tokens issued to this client. */
  readonly audience: string
  /** Exact origins allowed for CORS and, in cookie mode, for the CSRF check. @default [] */
  readonly allowedOrigins: readonly string[]
  /** Scopes the client may ask for; with no `scope` parameter it gets all of them. @default ['openid'] */
  readonly scopes: readonly string[]
  /** @default 900 (60..3600) */
  readonly accessTokenTtlSeconds: number
  /** A session unused this long ends. @default 604800 (7 days) */
  readonly refreshIdleTtlSeconds: number
  /** A session ends this long after login, however it is used. @default 2592000 (30 days) */
  readonly refreshAbsoluteTtlSeconds: number
  /** How long a rotated refresh token may be replayed for the same answer. @default 10 (0..60) */
  readonly reuseGraceSeconds: number
  /** Refresh token in a `__Host-` cookie instead of the body. @default false */
  readonly cookieMode: boolean
  /**
   * What a reuse after the grace window does: `enforce` revokes the session;
   * `report` refuses the token but keeps the session, and reports it (event
   * `"enforced": false`), to measure false positives before enforcing. @default 'enforce'
   */
  readonly reuseDetection: ReuseDetection
  /** DPoP (RFC 9449, docs/design.md "DPoP"): whether a proof binds, or must. @default 'optional' */
  readonly dpop: DpopPolicy
  /** Proofs must carry one of our nonces (RFC 9449 §8). @default false */
  readonly dpopNonce: boolean
}

export type ReuseDetection = 'enforce' | 'report'

/**
 * `optional`: a proof at `/login` or `/token` binds the session to its key.
 * `required`: a request without one is refused. `disabled`: the `DPoP` header
 * is ignored and tokens are bearer tokens, which lets the Lambda authorizer's
 * answers be cached (lib/token-authorizer.ts).
 */
export type DpopPolicy = 'disabled' | 'optional' | 'required'

const DPOP_POLICIES: readonly string[] = ['disabled', 'optional', 'required']

/** The shape clients take in props and in the clients file (docs/design.md "Clients"). */
export interface ClientConfig {
  client_id: string
  type: 'spa' | 'native'
  audience: string
  allowed_origins?: string[]
  scopes?: string[]
  access_token_ttl_seconds?: number
  refresh_idle_ttl_seconds?: number
  refresh_absolute_ttl_seconds?: number
  reuse_grace_seconds?: number
  cookie_mode?: boolean
  reuse_detection?: ReuseDetection
  dpop?: DpopPolicy
  dpop_nonce?: boolean
}

export const CLIENT_DEFAULTS = {
  allowed_origins: [] as string[],
  scopes: ['openid'],
  access_token_ttl_seconds: 900,
  refresh_idle_ttl_seconds: 7 * 24 * 3600,
  refresh_absolute_ttl_seconds: 30 * 24 * 3600,
  reuse_grace_seconds: 10,
  cookie_mode: false,
  reuse_detection: 'enforce',
  dpop: 'optional',
  dpop_nonce: false,
} as const

/**
 * Every key a client may have: its default, bounds and doc, once. `parseClients`
 * checks against it; docs/configuration.md is generated from it.
 */
export const CLIENT_FIELDS = {
  client_id: { doc: 'The client’s id: 1-64 characters of A-Z a-z 0-9 . _ -.' },
  type: { doc: '`spa` or `native`.' },
  audience: { doc: 'The `aud` of the access tokens issued to it.' },
  allowed_origins: {
    doc: 'Exact origins allowed for CORS and, in cookie mode, for the CSRF check. No wildcard.',
    default: CLIENT_DEFAULTS.allowed_origins,
  },
  scopes: {
    doc: 'Scopes it may ask for; with no `scope` parameter it gets all of them.',
    default: CLIENT_DEFAULTS.scopes,
  },
  access_token_ttl_seconds: {
    doc: 'Access-token lifetime.',
    default: CLIENT_DEFAULTS.access_token_ttl_seconds,
    min: 60,
    max: 3600,
  },
  refresh_idle_ttl_seconds: {
    doc: 'A session unused this long ends; at most `refresh_absolute_ttl_seconds`.',
    default: CLIENT_DEFAULTS.refresh_idle_ttl_seconds,
    min: 60,
    max: 365 * 24 * 3600,
  },
  refresh_absolute_ttl_seconds: {
    doc: 'A session ends this long after login, however it is used.',
    default: CLIENT_DEFAULTS.refresh_absolute_ttl_seconds,
    min: 60,
    max: 365 * 24 * 3600,
  },
  reuse_grace_seconds: {
    doc: 'How long a rotated refresh token may be replayed for the same answer. A stolen copy replayed within it gets the live token too: use 0 for high-risk clients (docs/security.md).',
    default: CLIENT_DEFAULTS.reuse_grace_seconds,
    min: 0,
    max: 60,
  },
  cookie_mode: {
    doc: 'The refresh token travels in a `__Host-` cookie instead of the body (needs `allowed_origins`).',
    default: CLIENT_DEFAULTS.cookie_mode,
  },
  reuse_detection: {
    doc: 'A retired refresh token presented after the grace window: `enforce` revokes its session; `report` refuses that token but keeps the session, and reports it (`token.reuse_detected` with `"enforced": false`), to measure false positives before enforcing (docs/security.md).',
    default: CLIENT_DEFAULTS.reuse_detection,
  },
  dpop: {
    doc: 'DPoP (RFC 9449): `optional` binds the tokens to the key of the client’s proof when it sends one, `required` refuses a `/login` or `/token` request without a proof, `disabled` ignores proofs (the only setting under which the Lambda authorizer’s answers may be cached).',
    default: CLIENT_DEFAULTS.dpop,
  },
  dpop_nonce: {
    doc: 'DPoP proofs must carry a server nonce (RFC 9449 §8): a proof without a current one gets `use_dpop_nonce` and a `DPoP-Nonce` header. Nonces are stateless (an HMAC of the time under a KMS key the stack creates).',
    default: CLIENT_DEFAULTS.dpop_nonce,
  },
} as const

const CLIENT_KEYS: readonly string[] = Object.keys(CLIENT_FIELDS)

const CLIENT_ID = /^[A-Za-z0-9._-]{1,64}$/
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/ // RFC 6749 §3.3 scope-token

export class ClientConfigError extends Error {}

export function parseClients(input: unknown): Map<string, Client> {
  if (!Array.isArray(input) || input.length === 0) {
    throw new ClientConfigError('clients must be a non-empty array')
  }
  const clients = new Map<string, Client>()
  for (const [index, raw] of input.entries()) {
    const client = parseClient(raw, `clients[${index}]`)
    if (clients.has(client.clientId)) {
      throw new ClientConfigError(`clients[${index}].client_id "${client.clientId}" is repeated`)
    }
    clients.set(client.clientId, client)
  }
  return clients
}

function parseClient(raw: unknown, at: string): Client {
  if (typeof raw !== 'object' || raw === null)
    throw new ClientConfigError(`${at} must be an object`)
  const c = { ...CLIENT_DEFAULTS, ...(raw as Partial<ClientConfig>) }
  const fail = (field: string, why: string): never => {
    throw new ClientConfigError(`${at}.${field} ${why}`)
  }
  // A misspelled key would otherwise be dropped silently and its default used.
  for (const key of Object.keys(raw)) {
    if (!CLIENT_KEYS.includes(key)) {
      fail(key, `is not a client setting (allowed: ${CLIENT_KEYS.join(', ')})`)
    }
  }
  if (typeof c.client_id !== 'string' || !CLIENT_ID.test(c.client_id)) {
    fail('client_id', 'must be 1-64 characters of A-Z a-z 0-9 . _ -')
  }
  if (c.type !== 'spa' && c.type !== 'native') fail('type', 'must be "spa" or "native"')
  if (typeof c.audience !== 'string' || c.audience === '') fail('audience', 'must be a string')
  if (!Array.isArray(c.allowed_origins) || !c.allowed_origins.every(isOrigin)) {
    fail('allowed_origins', 'must be a list of exact origins such as https://app.example.com')
  }
  if (
    !Array.isArray(c.scopes) ||
    !c.scopes.every((s) => typeof s === 'string' && SCOPE_TOKEN.test(s))
  ) {
    fail('scopes', 'must be a list of scope tokens')
  }
  const int = (
    field:
      | 'access_token_ttl_seconds'
      | 'refresh_idle_ttl_seconds'
      | 'refresh_absolute_ttl_seconds'
      | 'reuse_grace_seconds',
  ): number => {
    const { min, max } = CLIENT_FIELDS[field]
    const value = c[field]
    if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
      fail(field, `must be an integer from ${min} to ${max}`)
    }
    return value as number
  }
  const accessTtl = int('access_token_ttl_seconds')
  const idle = int('refresh_idle_ttl_seconds')
  const absolute = int('refresh_absolute_ttl_seconds')
  if (idle > absolute)
    fail('refresh_idle_ttl_seconds', 'must not exceed refresh_absolute_ttl_seconds')
  const grace = int('reuse_grace_seconds')
  if (typeof c.cookie_mode !== 'boolean') fail('cookie_mode', 'must be true or false')
  if (c.cookie_mode && c.allowed_origins.length === 0) {
    fail('allowed_origins', 'must name at least one origin when cookie_mode is true')
  }
  if (c.reuse_detection !== 'enforce' && c.reuse_detection !== 'report') {
    fail('reuse_detection', 'must be "enforce" or "report"')
  }
  if (!DPOP_POLICIES.includes(c.dpop as string)) {
    fail('dpop', 'must be "optional", "required" or "disabled"')
  }
  if (typeof c.dpop_nonce !== 'boolean') fail('dpop_nonce', 'must be true or false')
  if (c.dpop_nonce && c.dpop === 'disabled') {
    fail('dpop_nonce', 'needs DPoP: it cannot be true when dpop is "disabled"')
  }
  return {
    clientId: c.client_id as string,
    type: c.type as Client['type'],
    audience: c.audience as string,
    allowedOrigins: [...c.allowed_origins],
    scopes: [...c.scopes],
    accessTokenTtlSeconds: accessTtl,
    refreshIdleTtlSeconds: idle,
    refreshAbsoluteTtlSeconds: absolute,
    reuseGraceSeconds: grace,
    cookieMode: c.cookie_mode,
    reuseDetection: c.reuse_detection as ReuseDetection,
    dpop: c.dpop as DpopPolicy,
    dpopNonce: c.dpop_nonce,
  }
}

function isOrigin(value: unknown): boolean {
  if (typeof value !== 'string') return false
  try {
    const url = new URL(value)
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === value
  } catch {
    return false
  }
}
