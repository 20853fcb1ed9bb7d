import { Duration, RemovalPolicy, Token } from 'aws-cdk-lib'
import type * as acm from 'aws-cdk-lib/aws-certificatemanager'
import type * as route53 from 'aws-cdk-lib/aws-route53'
import { describe, expect, it } from 'vitest'
import type { ClientConfig } from '../../functions/core/clients.js'
import { SETTINGS } from '../../functions/settings.js'
import { ALARM_THRESHOLDS, DEFAULTS } from '../../lib/defaults.js'
import { resolveProps, type TokenServiceProps } from '../../lib/token-service-props.js'

// No App, no Stack, no synth: resolveProps reads the props and nothing else.
const place = { stackName: 'Prod', id: 'TokenService' }
const clients: ClientConfig[] = [
  { client_id: 'native', type: 'native', audience: 'https://api.example.com', dpop: 'disabled' },
  {
    client_id: 'spa',
    type: 'spa',
    audience: 'https://api.example.com',
    allowed_origins: ['https://app.example.com'],
    access_token_ttl_seconds: 600,
    dpop: 'disabled',
  },
]
const resolve = (props: Partial<TokenServiceProps> = {}) =>
  resolveProps({ clients, ...props }, place)
const certificate = {} as acm.ICertificate
const hostedZone = {} as route53.IHostedZone

describe('resolveProps: every default in one place, before any resource', () => {
  it('applies the secure defaults of lib/defaults.ts and functions/settings.ts', () => {
    const resolved = resolve()
    expect(resolved).toMatchObject({
      algorithm: 'RS256',
      signingKeys: [{ id: 'k1', state: 'active' }],
      activeKeyId: 'k1',
      signingKeyIds: ['k1'],
      dpopNonce: false,
      throttle: DEFAULTS.throttle,
      routeThrottles: {
        'POST /token': DEFAULTS.tokenThrottle,
        'POST /login': DEFAULTS.loginThrottle,
        'POST /me/password': DEFAULTS.passwordThrottle,
      },
      logSampleRate: '0.01',
      tracing: true,
      alarmThresholds: ALARM_THRESHOLDS,
      removalPolicy: RemovalPolicy.RETAIN,
      deletionProtection: true,
      logRetention: DEFAULTS.logRetention,
      eventBus: true,
      tuning: {
        TOKEN_BACKDATE_SECONDS: String(SETTINGS.TOKEN_BACKDATE_SECONDS.default),
        JWKS_MAX_AGE_SECONDS: String(SETTINGS.JWKS_MAX_AGE_SECONDS.default),
        LOGIN_FREE_FAILURES: String(SETTINGS.LOGIN_FREE_FAILURES.default),
        LOGIN_BACKOFF_BASE_SECONDS: String(SETTINGS.LOGIN_BACKOFF_BASE_SECONDS.default),
        LOGIN_BACKOFF_MAX_SECONDS: String(SETTINGS.LOGIN_BACKOFF_MAX_SECONDS.default),
        LOGIN_FAILURE_WINDOW_SECONDS: String(SETTINGS.LOGIN_FAILURE_WINDOW_SECONDS.default),
      },
    })
    // The issuer is the API's endpoint, which only the API builder knows.
    expect(resolved.issuer).toBeUndefined()
    expect(resolved.authorizer).toEqual({
      kind: 'lambda',
      props: {
        clients,
        strict: false,
        logRetention: DEFAULTS.logRetention,
        removalPolicy: RemovalPolicy.RETAIN,
      },
    })
    expect(Token.isUnresolved(resolved.accessLogGroupName)).toBe(true)
  })

  it('drops the deletion protection with DESTROY unless asked, and keeps what is given', () => {
    expect(resolve({ removalPolicy: RemovalPolicy.DESTROY }).deletionProtection).toBe(false)
    expect(
      resolve({ removalPolicy: RemovalPolicy.DESTROY, deletionProtection: true })
        .deletionProtection,
    ).toBe(true)
    expect(resolve({ securityEvents: { bus: false } }).eventBus).toBe(false)
    expect(resolve({ jwksMaxAge: Duration.minutes(1) }).tuning.JWKS_MAX_AGE_SECONDS).toBe('60')
  })

  it('takes the issuer from the custom domain unless one is given', () => {
    const domain = { domainName: 'auth.example.com', certificate }
    expect(resolve({ domain }).issuer).toBe('https://auth.example.com')
    expect(resolve({ domain, issuer: 'https://id.example.com' }).issuer).toBe(
      'https://id.example.com',
    )
  })

  it('signs with the active key first, then each transition key once', () => {
    const resolved = resolve({
      signingKeys: [
        { id: 'k1', state: 'retiring' },
        { id: 'k2', state: 'active' },
        { id: 'k3', state: 'retiring' },
      ],
      transitionSigningKeys: ['k3', 'k2', 'k3'],
    })
    expect(resolved.activeKeyId).toBe('k2')
    expect(resolved.signingKeyIds).toEqual(['k2', 'k3'])
  })

  it('needs the DPoP nonce key only when some client has dpop_nonce', () => {
    const nonce = [{ ...clients[0], dpop: 'optional', dpop_nonce: true }] as ClientConfig[]
    expect(resolve({ clients: nonce }).dpopNonce).toBe(true)
  })

  it('gives the native JWT authorizer the clients’ audiences, and says when it cannot wait for the issuer', () => {
    expect(resolve({ authorizer: 'jwt' }).authorizer).toEqual({
      kind: 'jwt',
      audiences: ['https://api.example.com'],
    })
    const outside = (props: Partial<TokenServiceProps>) => {
      const { authorizer } = resolve({ authorizer: 'jwt', ...props })
      return authorizer.kind === 'jwt' ? authorizer.issuerOutside : 'not jwt'
    }
    const domain = { domainName: 'auth.example.com', certificate, hostedZone }
    expect(outside({ domain })).toBeUndefined()
    expect(outside({ domain, issuer: 'https://auth.example.com' })).toBeUndefined()
    expect(outside({ domain: { ...domain, hostedZone: undefined } })).toMatch(
      /DNS record of auth\.example\.com is not in this stack/,
    )
    expect(outside({ issuer: 'https://id.example.com' })).toMatch(
      /the issuer https:\/\/id\.example\.com is not this API's address/,
    )
  })
})

describe('resolveProps: every check, before any resource', () => {
  const refusals: [string, Partial<TokenServiceProps>, RegExp][] = [
    ['no clients', { clients: [] }, /TokenService: clients must be a non-empty array/],
    ['an unknown algorithm', { algorithm: 'HS256' as never }, /algorithm must be RS256 or ES256/],
    [
      'an unknown authorizer',
      { authorizer: 'iam' as never },
      /authorizer must be "lambda" or "jwt"/,
    ],
    [
      'ES256 with the JWT authorizer',
      { algorithm: 'ES256', authorizer: 'jwt' },
      /accepts RS256 tokens only/,
    ],
    [
      'strict revocation with the JWT authorizer',
      { authorizer: 'jwt', strictRevocation: true },
      /strictRevocation needs the Lambda authorizer/,
    ],
    [
      'a client requiring DPoP with the JWT authorizer',
      {
        authorizer: 'jwt',
        clients: [{ ...clients[0], dpop: 'required' }] as ClientConfig[],
      },
      /clients native have dpop "required"/,
    ],
    [
      'two active keys',
      {
        signingKeys: [
          { id: 'a', state: 'active' },
          { id: 'b', state: 'active' },
        ],
      },
      /TokenService: .*active/,
    ],
    [
      'an unlisted transition key',
      { transitionSigningKeys: ['k9'] },
      /transitionSigningKeys names "k9"/,
    ],
    [
      'a login limit above the stage’s',
      { loginThrottle: { rateLimit: 3600, burstLimit: 40 } },
      /loginThrottle must not exceed throttle/,
    ],
    [
      'a /token burst above the stage’s',
      {
        throttle: { rateLimit: 100, burstLimit: 200 },
        tokenThrottle: { rateLimit: 50, burstLimit: 300 },
      },
      /tokenThrottle must not exceed throttle/,
    ],
    [
      'a fractional burst',
      { throttle: { rateLimit: 5, burstLimit: 1.5 } },
      /throttle needs a positive rateLimit and an integer burstLimit/,
    ],
    [
      'a backdate out of bounds',
      { tokenBackdateSeconds: 61 },
      /tokenBackdateSeconds must be an integer from 0 to 60/,
    ],
    [
      'a JWKS max-age out of bounds',
      { jwksMaxAge: Duration.days(2) },
      /jwksMaxAge must be an integer from 0 to 86400/,
    ],
    [
      'a failure window shorter than the longest wait',
      { loginBackoff: { maxSeconds: 7200, failureWindowSeconds: 3600 } },
      /failureWindowSeconds \(3600\) must be at least loginBackoff\.maxSeconds \(7200\)/,
    ],
    ['an http issuer', { issuer: 'http://auth.example.com' }, /issuer must be an https URL/],
    [
      'a domain that makes no issuer',
      { domain: { domainName: 'auth.example.com/', certificate } },
      /issuer must be an https URL .* got "https:\/\/auth\.example\.com\/"/,
    ],
    [
      'Lambda-only settings with the JWT authorizer',
      { authorizer: 'jwt', authorizerSettings: { maxTokenBytes: 2048 } },
      /authorizerSettings maxTokenBytes apply to the Lambda authorizer only/,
    ],
    [
      'an answer cache with the JWT authorizer',
      { authorizer: 'jwt', authorizerCacheTtl: Duration.seconds(5) },
      /authorizerCacheTtl applies to the Lambda authorizer only/,
    ],
    // The Lambda authorizer's own checks run here too, not after the functions exist.
    [
      'an answer cache longer than the skew',
      { authorizerCacheTtl: Duration.seconds(31) },
      /TokenAuthorizer: resultsCacheTtl 31 s exceeds the clock skew/,
    ],
    [
      'a session cache without strict mode',
      { authorizerSettings: { sessionCacheSeconds: 2 } },
      /sessionCacheSeconds applies to strict mode only/,
    ],
    [
      'an audience no client has',
      { authorizerSettings: { audiences: ['https://other.example.com'] } },
      /audience "https:\/\/other\.example\.com" is no client's audience/,
    ],
    [
      'a stack name too long for the access log group',
      {},
      /access log group name .* is not a CloudWatch Logs name/,
    ],
  ]
  for (const [what, props, message] of refusals) {
    it(`refuses ${what}, naming the prop`, () => {
      const where = what.startsWith('a stack name')
        ? { ...place, stackName: 'S'.repeat(500) }
        : place
      expect(() => resolveProps({ clients, ...props }, where)).toThrow(message)
    })
  }
})
