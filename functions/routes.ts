import type { EnvelopeKeyStore } from './adapters/envelope-signer.js'
import type { GraceKeyDirectory } from './adapters/kms-grace-keys.js'
import type { DpopReplayStore } from './core/dpop.js'
import type { EventOutbox, LoginAttempts, SessionStore, UserStore } from './core/ports.js'
import type { RegionSwitch } from './core/regions.js'
import type { LambdaName } from './settings.js'

/**
 * The one route table (docs/design.md "HTTP API"). The CDK stack builds its
 * routes from it, local mode serves it, and the OpenAPI check and the stack
 * suite compare against it.
 */

export type HttpFunction = Exclude<
  LambdaName,
  'authorizer' | 'authorizerStrict' | 'forwarder' | 'forks'
>

export interface RouteSpec {
  readonly method: 'GET' | 'POST' | 'DELETE'
  /** An API Gateway route path: `{name}` matches one path segment. */
  readonly path: string
  readonly function: HttpFunction
  /** `bearer`: behind the authorizer (an access token is required). */
  readonly auth: 'none' | 'bearer'
}

export const ROUTES: readonly RouteSpec[] = [
  { method: 'POST', path: '/login', function: 'login', auth: 'none' },
  { method: 'POST', path: '/token', function: 'token', auth: 'none' },
  { method: 'POST', path: '/revoke', function: 'revoke', auth: 'none' },
  { method: 'GET', path: '/.well-known/jwks.json', function: 'jwks', auth: 'none' },
  { method: 'GET', path: '/.well-known/openid-configuration', function: 'jwks', auth: 'none' },
  {
    method: 'GET',
    path: '/.well-known/oauth-authorization-server',
    function: 'jwks',
    auth: 'none',
  },
  { method: 'GET', path: '/sessions', function: 'sessions', auth: 'bearer' },
  { method: 'DELETE', path: '/sessions', function: 'sessions', auth: 'bearer' },
  { method: 'DELETE', path: '/sessions/{sid}', function: 'sessions', auth: 'bearer' },
  { method: 'GET', path: '/me', function: 'me', auth: 'bearer' },
  { method: 'POST', path: '/me/password', function: 'password', auth: 'bearer' },
]

/** How the shared HTTP stack (functions/adapters/http.ts) treats a function's requests. */
export interface HttpOptions {
  /** Parse a form or JSON body (413 above 8 KiB, 415 for other types). */
  readonly body: boolean
  /** `Cache-Control: no-store` on every answer, errors included (RFC 6749 §5.1). */
  readonly noStore: boolean
}

/**
 * A method of a store port (functions/core/ports.ts, core/dpop.ts): the unit a function's
 * DynamoDB grants are made of (lib/table-access.ts has each one's actions).
 */
export type StoreMethod =
  | keyof SessionStore
  | keyof UserStore
  | keyof LoginAttempts
  | keyof EventOutbox
  | keyof DpopReplayStore
  | keyof GraceKeyDirectory
  | keyof EnvelopeKeyStore
  | keyof RegionSwitch

/**
 * What a function does with the service's KMS keys (lib/token-service-keys.ts grants each):
 * - `sign`: `Sign` a digest and read the signing key's public key (its `kid`), with the
 *   active key and the keys a rotation deployed half-way may sign with;
 * - `publish`: read the public key of every listed signing key (JWKS);
 * - `envelopeSign`: unwrap (`Decrypt`) the private key of an envelope key login and token
 *   may sign with, generate its pair if none is stored, and read and store the pairs (only
 *   when a listed key is an envelope key);
 * - `envelopePublish`: read and store envelope keys' pairs (their items only) and generate
 *   the pair of a key published first (JWKS; in every mode, by tag);
 * - `graceSeal`: wrap and unwrap the data keys that seal grace children;
 * - `nonceMac`: derive the DPoP nonce key (`GenerateMac`), when a client has `dpop_nonce`.
 */
export type KmsUse =
  | 'sign'
  | 'publish'
  | 'envelopeSign'
  | 'envelopePublish'
  | 'graceSeal'
  | 'nonceMac'

/**
 * The store methods of envelope keys' pairs: granted with the `envelopeSign` and
 * `envelopePublish` uses (only with an envelope key, or only on their items), not from
 * the row's `store` as the others are.
 */
export const KEY_PAIR_METHODS: readonly StoreMethod[] = ['findKeyPair', 'createKeyPair']

export interface FunctionSpec {
  /** The handler module, from the project root; its export `handler`. */
  readonly entry: string
  /** For the function's description. */
  readonly purpose: string
  /**
   * Memory buys CPU: login hashes with scrypt (N=2^17, 128 MiB, CPU bound), and
   * 1769 MB is one full vCPU.
   */
  readonly memoryMiB: number
  /**
   * Room for the function's sequential AWS calls, each bounded by
   * `AWS_CALL_TIMEOUT_MS x AWS_MAX_ATTEMPTS`, far below API Gateway's 29 s.
   */
  readonly timeoutSeconds: number
  /**
   * Every store method its code calls, and no other: the stack grants their DynamoDB
   * actions (lib/table-access.ts) and nothing else on the table. test/unit/function-rows.test.ts
   * checks the code reachable from the handler against it.
   */
  readonly store: readonly StoreMethod[]
  /** What it does with the KMS keys; the stack grants each use and no other KMS action. */
  readonly kms: readonly KmsUse[]
}

const http = (body: boolean, noStore = true): HttpOptions => ({ body, noStore })

/** Every HTTP function: its bundle and its request handling. */
export const HTTP_FUNCTIONS: Readonly<Record<HttpFunction, FunctionSpec & { http: HttpOptions }>> =
  {
    login: {
      entry: 'functions/login/handler.ts',
      purpose: 'POST /login',
      memoryMiB: 1769,
      timeoutSeconds: 10,
      store: [
        // One Query finds the user while the attempt takes its turn (counted up front, or a
        // back-off slot claimed); success clears the count and creates the session guarded by
        // the user, with its event. A refusal that changes nothing else writes its event alone:
        // login.throttled, or login.failed (the turn already counted it).
        'loadLogin',
        'countLoginAttempt',
        'claimLoginAttempt',
        'clearLoginFailures',
        'createSession',
        'appendEvent',
        // A replayed DPoP proof's event, once an hour per user (core/theft-signals.ts).
        'appendEventOnce',
        // A session whose token could not be sent (signing failed) is revoked at once.
        'revokeSession',
        // A DPoP proof's single use.
        'recordProof',
        // Envelope keys' pairs (KEY_PAIR_METHODS, granted with `envelopeSign`).
        'findKeyPair',
        'createKeyPair',
      ],
      kms: ['sign', 'envelopeSign', 'nonceMac'],
      http: http(true),
    },
    token: {
      entry: 'functions/token/handler.ts',
      purpose: 'POST /token (refresh)',
      // Waits on DynamoDB and KMS: about 10 ms of CPU a warm call (docs/benchmarks.md "Memory
      // per function"); 512 MB (0.29 vCPU) adds about 17 ms to a refresh and bills 30% less.
      memoryMiB: 512,
      timeoutSeconds: 8,
      // One batched read (and a DPoP proof's single use), then the rotation; a lost race
      // re-reads the session; reuse revokes it, or, for a client in report mode, writes its
      // event alone.
      store: [
        'loadRefreshState',
        // Only for a token that is neither the session's current nor its previous one.
        'wasRetired',
        'recordProof',
        'getSession',
        // The retired token's record, before the one conditional write of the session.
        'recordRetired',
        'rotate',
        'revokeSession',
        'appendEvent',
        // A DPoP theft signal's event, once an hour per session (core/theft-signals.ts).
        'appendEventOnce',
        // The grace seals' wrapped keys: this container's written once, another's read.
        'saveGraceKey',
        'findGraceKey',
        // Envelope keys' pairs (KEY_PAIR_METHODS, granted with `envelopeSign`).
        'findKeyPair',
        'createKeyPair',
        // `failover: 'adopt'`: whether a home that did not answer is declared lost (cached).
        'findRegionDeclaration',
      ],
      // Signs; seals a rotation's grace child and opens one for a grace replay.
      kms: ['sign', 'envelopeSign', 'nonceMac', 'graceSeal'],
      http: http(true),
    },
    revoke: {
      entry: 'functions/revoke/handler.ts',
      purpose: 'POST /revoke',
      memoryMiB: 512,
      timeoutSeconds: 6,
      // The record of a token older than the session's previous one.
      store: ['loadRefreshState', 'wasRetired', 'revokeSession'],
      kms: [],
      http: http(true),
    },
    jwks: {
      entry: 'functions/jwks/handler.ts',
      purpose: 'JWKS and discovery',
      memoryMiB: 512,
      timeoutSeconds: 5,
      // Envelope keys' pairs (KEY_PAIR_METHODS, granted with `envelopePublish` on their items).
      store: ['findKeyPair', 'createKeyPair'],
      kms: ['publish', 'envelopePublish'],
      // Public documents, cached by verifiers (JWKS_MAX_AGE_SECONDS).
      http: http(false, false),
    },
    sessions: {
      entry: 'functions/sessions/handler.ts',
      purpose: '/sessions',
      memoryMiB: 512,
      timeoutSeconds: 6,
      // List (with the user, to drop sessions a logout everywhere voided), end one, end all
      // (void the user's sessions, then revoke each).
      store: ['listSessions', 'loadSessionState', 'getSession', 'revokeSession', 'updateUser'],
      kms: [],
      http: http(false),
    },
    // A function of its own: two scrypt runs per call (check, then hash) need login's CPU,
    // which the light sessions function should not pay for on every request.
    password: {
      entry: 'functions/password/handler.ts',
      purpose: 'POST /me/password',
      memoryMiB: 1769,
      timeoutSeconds: 10,
      // The caller's session and user in one read, the username's failed logins (the login
      // back-off, counted and claimed as at login), the change (one transaction: the user's
      // hash and sessions_valid_after, the kept session, password.changed), then each other
      // session revoked with its event. A refused check writes its event alone. No KMS: it
      // signs nothing.
      store: [
        'loadSessionState',
        'countLoginAttempt',
        'claimLoginAttempt',
        'clearLoginFailures',
        'changePassword',
        'appendEvent',
        'listSessions',
        'revokeSession',
      ],
      kms: [],
      http: http(true),
    },
    me: {
      entry: 'functions/me/handler.ts',
      purpose: 'GET /me',
      memoryMiB: 256,
      timeoutSeconds: 3,
      store: [],
      kms: [],
      http: http(false),
    },
  }

/** Every Lambda function: the HTTP ones, the two authorizer variants and the events' forwarder. */
export const LAMBDA_FUNCTIONS: Readonly<Record<LambdaName, FunctionSpec>> = {
  ...HTTP_FUNCTIONS,
  // Verifies on every protected request: an RS256 verify is about 40 µs of CPU and a warm call
  // about 0.1 ms in all (docs/benchmarks.md "Memory per function"); 512 MB keeps its cold start,
  // which fetches the JWKS, short.
  authorizer: {
    entry: 'functions/authorizer/handler.ts',
    purpose: 'Lambda authorizer',
    memoryMiB: 512,
    timeoutSeconds: 5,
    // It verifies with the JWKS: no table, no KMS.
    store: [],
    kms: [],
  },
  authorizerStrict: {
    entry: 'functions/authorizer/strict-handler.ts',
    purpose: 'Lambda authorizer, strict revocation',
    memoryMiB: 512,
    timeoutSeconds: 5,
    // Strict revocation: the session and its user, in one read.
    store: ['loadSessionState'],
    kms: [],
  },
  // Behind no route: the table's stream invokes it (docs/design.md "Security events").
  // Its PutEvents calls run in parallel, so one call's SDK budget bounds a batch.
  forwarder: {
    entry: 'functions/forwarder/handler.ts',
    purpose: 'Security events: table stream to EventBridge',
    memoryMiB: 256,
    timeoutSeconds: 10,
    // The table's stream and the bus only (lib/security-events.ts).
    store: [],
    kms: [],
  },
  // `failover: 'adopt'` only, behind no route: the table's stream, filtered to replaced
  // session items that carry an epoch, invokes it (docs/multi-region.md "Fork detection");
  // and the other regions' copies, to end a fork in its converged home.
  forks: {
    entry: 'functions/forks/handler.ts',
    purpose: 'Fork detection: ends a session two regions decided apart',
    memoryMiB: 256,
    timeoutSeconds: 10,
    // The forked session, then its revocation with its event.
    store: ['getSession', 'revokeSession'],
    kms: [],
  },
}

/** The functions a stream invokes rather than a route or the authorizer: not behind the API. */
export const STREAM_FUNCTIONS: readonly LambdaName[] = ['forwarder', 'forks']

/**
 * The CORS policy (origins: every client's `allowed_origins`), one for the whole API:
 * the HTTP API's preflight (CDK), the functions' answers (middy) and local mode use it.
 */
export const CORS = {
  allowMethods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
  /** `DPoP`: the proof of a DPoP client (RFC 9449). */
  allowHeaders: ['Authorization', 'Content-Type', 'DPoP'],
  /**
   * A cross-origin client must read why it was refused, when to retry, the DPoP
   * nonce, and the server's time (DPoP proofs are dated by it).
   */
  exposeHeaders: ['WWW-Authenticate', 'Retry-After', 'DPoP-Nonce', 'Date'],
  allowCredentials: true,
  maxAgeSeconds: 600,
} as const
