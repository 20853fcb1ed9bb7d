import type { Logger } from '@aws-lambda-powertools/logger'
import { type HttpHandler, httpHandler } from '../functions/adapters/http.js'
import type { Observability } from '../functions/adapters/observability.js'
import { passwordPolicy } from '../functions/adapters/password-policy.js'
import { type Authorizer, createAuthorizer } from '../functions/authorizer/authorizer.js'
import {
  corsOrigins,
  type Env,
  loadAuthorizerConfig,
  loadBackdateSeconds,
  loadBreachCheck,
  loadJwksMaxAgeSeconds,
  loadLoginBackoff,
  loadRegions,
  loadSessionCacheSeconds,
} from '../functions/config.js'
import type { Client } from '../functions/core/clients.js'
import type { Clock } from '../functions/core/clock.js'
import { type DpopReplayStore, DpopVerifier } from '../functions/core/dpop.js'
import { DpopGrant } from '../functions/core/dpop-grant.js'
import { DpopNonces } from '../functions/core/dpop-nonce.js'
import type { PasswordPolicy } from '../functions/core/password-policy.js'
import type {
  EventOutbox,
  GraceKeys,
  LoginAttempts,
  SessionStore,
  Signer,
  UserStore,
} from '../functions/core/ports.js'
import { type HomeRegions, lostRegions, type RegionSwitch } from '../functions/core/regions.js'
import { jwksRoute } from '../functions/jwks/route.js'
import { loginRoute } from '../functions/login/route.js'
import { meRoute } from '../functions/me/route.js'
import { passwordRoute } from '../functions/password/route.js'
import { revokeRoute } from '../functions/revoke/route.js'
import { HTTP_FUNCTIONS, type HttpFunction } from '../functions/routes.js'
import { sessionsRoute } from '../functions/sessions/route.js'
import { tokenRoute } from '../functions/token/route.js'

/** What local mode runs every function on: one process, one of each port. */
export interface LocalParts {
  readonly issuer: string
  readonly clients: ReadonlyMap<string, Client>
  readonly sessions: SessionStore
  readonly users: UserStore
  readonly loginAttempts: LoginAttempts
  readonly outbox: EventOutbox
  readonly signer: Signer
  /** The server's half of the grace seals (KMS data keys in AWS). */
  readonly graceKeys: GraceKeys
  /** DPoP proofs used at `/login` and `/token` (DynamoDB Local, as in AWS). */
  readonly dpopReplay: DpopReplayStore
  /** The DPoP nonces' key, in place of the KMS HMAC key (local/nonce-key.ts). */
  readonly dpopNonceKey: Uint8Array
  readonly clock: Clock
  readonly observability: Observability
  /** The functions' own settings (`LOGIN_*`, `AUTHORIZER_*`, ...), read as in Lambda. */
  readonly env: Env
  /** Run the strict authorizer (the stack's `strictRevocation`). */
  readonly strict: boolean
  /** With several regions (`REGIONS` and `HOME_REGION` of `env`): the way to a session's home. */
  readonly homeRegions?: HomeRegions
  /** With several regions: the operators' switch that declares a region lost (`failover: 'adopt'`). */
  readonly regionSwitch?: RegionSwitch
}

/** Every function of the stack, wired on local parts. */
export interface LocalService extends LocalParts {
  /** Each HTTP function's handler, as its Lambda wraps it (functions/routes.ts). */
  readonly handlers: Readonly<Record<HttpFunction, HttpHandler>>
  readonly authorizer: Authorizer
  /** The authorizer's logger: local/server.ts sets its Lambda context for each call. */
  readonly authorizerLogger: Logger
  readonly corsOrigins: readonly string[]
  /** The rules new passwords meet: the password route's, and the demo user's. */
  readonly passwordPolicy: PasswordPolicy
}

/**
 * Wires each route with the ports its Lambda handler gives it
 * (functions/<name>/handler.ts), from local parts instead of AWS clients, and
 * reads each function's settings with the same loaders.
 */
export function wireLocalService(parts: LocalParts): LocalService {
  const {
    issuer,
    clients,
    sessions,
    users,
    loginAttempts,
    outbox,
    signer,
    clock,
    observability,
    env,
  } = parts
  const stack = { ...observability, corsOrigins: corsOrigins(clients) }
  const http = (name: HttpFunction) => HTTP_FUNCTIONS[name].http
  const telemetry = observability.telemetry
  const nonces = new DpopNonces(parts.dpopNonceKey, clock)
  const policy = passwordPolicy({ telemetry, breachCheck: loadBreachCheck(env) })
  const regions = loadRegions(env)
  const signing = {
    sessions,
    outbox,
    signer,
    clock,
    telemetry,
    settings: { issuer, backdateSeconds: loadBackdateSeconds(env), ...(regions && { regions }) },
    clients,
    dpop: new DpopGrant({
      verifier: new DpopVerifier(clock),
      nonces: () => Promise.resolve(nonces),
      replay: parts.dpopReplay,
      clock,
    }),
  }
  const handlers: Record<HttpFunction, HttpHandler> = {
    login: httpHandler(
      loginRoute,
      { ...signing, loginAttempts, loginBackoff: loadLoginBackoff(env) },
      stack,
      http('login'),
    ),
    token: httpHandler(
      tokenRoute,
      {
        ...signing,
        graceKeys: parts.graceKeys,
        ...(parts.homeRegions && { homeRegion: parts.homeRegions.token }),
        ...(regions?.failover === 'adopt' &&
          parts.regionSwitch && { lostRegions: lostRegions(parts.regionSwitch, clock) }),
      },
      stack,
      http('token'),
    ),
    revoke: httpHandler(
      revokeRoute,
      {
        sessions,
        clock,
        telemetry,
        clients,
        ...(regions && { regions }),
        ...(parts.homeRegions && { homeRegion: parts.homeRegions.revoke }),
      },
      stack,
      http('revoke'),
    ),
    jwks: httpHandler(
      jwksRoute,
      { issuer, signer, jwksMaxAgeSeconds: loadJwksMaxAgeSeconds(env) },
      stack,
      http('jwks'),
    ),
    sessions: httpHandler(
      sessionsRoute,
      {
        sessions,
        users,
        clock,
        telemetry,
        ...(regions && { regions }),
        ...(parts.homeRegions && { homeRegion: parts.homeRegions.sessions }),
      },
      stack,
      http('sessions'),
    ),
    password: httpHandler(
      passwordRoute,
      {
        sessions,
        users,
        loginAttempts,
        outbox,
        clock,
        telemetry,
        loginBackoff: loadLoginBackoff(env),
        passwordPolicy: policy,
      },
      stack,
      http('password'),
    ),
    me: httpHandler(meRoute, undefined, stack, http('me')),
  }
  const audiences = [...new Set([...clients.values()].map((client) => client.audience))]
  const longestTtl = Math.max(
    ...[...clients.values()].map((client) => client.accessTokenTtlSeconds),
  )
  // Its own logger, as in Lambda where it is its own function: the server gives it the
  // authorizer's name and request id before each call (the handlers' is the last request's).
  const authorizerLogger = observability.logger.createChild()
  const authorizer = createAuthorizer({
    config: loadAuthorizerConfig({
      AUTHORIZER_AUDIENCES: audiences.join(','),
      // As the stack sets it (lib/token-authorizer.ts): the longest token the service issues.
      AUTHORIZER_MAX_TOKEN_LIFETIME_SECONDS: String(longestTtl + signing.settings.backdateSeconds),
      ...env,
      ISSUER: issuer,
    }),
    // The local key stands in for the JWKS the deployed authorizer fetches.
    fetchKeys: () => signer.publicKeys(),
    clock,
    logger: authorizerLogger,
    ...(parts.strict && {
      strict: { sessions, cacheSeconds: loadSessionCacheSeconds(env) },
    }),
  })
  return {
    ...parts,
    handlers,
    authorizer,
    authorizerLogger,
    corsOrigins: stack.corsOrigins,
    passwordPolicy: policy,
  }
}
