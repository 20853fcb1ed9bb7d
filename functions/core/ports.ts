import type { RevocationReason, SecurityEvent } from './security-events.js'

/**
 * The ports the domain talks through. Each has one real adapter in
 * `functions/adapters`; the domain never sees AWS, HTTP or middy.
 *
 * A write that changes state takes the security events it reports
 * (core/security-events.ts) and commits them with the change, in one
 * DynamoDB transaction: if the change does not commit, neither do they.
 * Without events (tests setting up state) it is the plain write.
 */

export type UserStatus = 'active' | 'disabled'

export interface User {
  /** Immutable user id, the `sub` claim. Never the username. */
  readonly sub: string
  /** Normalized username (see `normalizeUsername`). */
  readonly username: string
  /** PHC string, for example `$scrypt$ln=17,r=8,p=1$<salt>$<hash>`. */
  readonly passwordHash: string
  readonly roles: readonly string[]
  readonly status: UserStatus
  /**
   * Epoch ms. Sessions created before this instant are void (logout everywhere,
   * disable, password change), except `keptSession`.
   */
  readonly sessionsValidAfter?: number
  /**
   * The one session the last password change kept: the calling one, which
   * `sessionsValidAfter` spares. Anything else that sets `sessionsValidAfter`
   * clears it.
   */
  readonly keptSession?: string
  readonly createdAt: number
}

export type SessionStatus = 'active' | 'revoked'

export interface Session {
  readonly sid: string
  readonly sub: string
  readonly clientId: string
  readonly scope: string
  readonly status: SessionStatus
  readonly revokedReason?: string
  /** All times are epoch ms. */
  readonly createdAt: number
  readonly lastUsedAt: number
  readonly idleExpiresAt: number
  readonly absoluteExpiresAt: number
  /** How many rotations this session has seen. The first token is generation 0. */
  readonly generation: number
  /** SHA-256 (base64url) of the one refresh token that may rotate now. */
  readonly currentHash: string
  /** SHA-256 of the token retired by the last rotation, replayable within grace. */
  readonly previousHash?: string
  readonly rotatedAt?: number
  /**
   * The current token, sealed under a key derived from the previous one (grace replay):
   * the "grace child" of docs/design.md, stored as `grace_child` (the stored name stays).
   */
  readonly sealedSuccessor?: string
  readonly userAgent?: string
  /**
   * The RFC 7638 thumbprint of the DPoP key the session is bound to (set at login,
   * never changed): every refresh must carry a proof of this key.
   */
  readonly jkt?: string
  /**
   * With several regions, the session's home: the region whose login created it, the one
   * that decides its refreshes (docs/multi-region.md). Undefined: the primary's, or one region.
   */
  readonly home?: string
  /**
   * With `failover: 'adopt'`: how many times another region has taken the session over
   * from a lost home (absent: 0). Fork detection compares it across a replicated overwrite
   * (core/forks.ts).
   */
  readonly epoch?: number
  /** The generation the last adoption took the session over at (with `epoch`). */
  readonly adoptedAt?: number
}

/** The single batched, strongly consistent read that starts a refresh: two items. */
export interface RefreshState {
  readonly user?: User
  readonly session?: Session
}

/** What a rotation writes, conditional on the session still being at `expect`. */
export interface Rotation {
  readonly sid: string
  readonly expect: { readonly currentHash: string; readonly generation: number }
  readonly next: {
    readonly currentHash: string
    readonly previousHash: string
    readonly generation: number
    readonly rotatedAt: number
    readonly sealedSuccessor: string
    readonly lastUsedAt: number
    readonly idleExpiresAt: number
  }
  /**
   * The token this rotation retires (the session's current one): its record
   * (`recordRetired`) is written before the session changes, so that once it
   * has left the session (two rotations on) it is still known as authentic,
   * and its reuse detected. `issuedAt` is when it was issued (the last
   * rotation, or login).
   */
  readonly retired: {
    readonly hash: string
    readonly generation: number
    readonly issuedAt: number
  }
  /** Epoch ms after which DynamoDB may delete the session and its token records. */
  readonly absoluteExpiresAt: number
  /**
   * With several regions: the session's `home` as it was read (undefined: absent, a session
   * of the primary). The write holds only while the item still says so, so that a region
   * decides only the sessions the item homes there (docs/multi-region.md "Adoption").
   */
  readonly home?: {
    readonly expected: string | undefined
    /** An adoption: the item's new home, its epoch, and the generation adopted at. */
    readonly adopt?: { readonly home: string; readonly epoch: number; readonly adoptedAt: number }
  }
}

/**
 * What `rotate` did: committed, or lost to another writer (someone else
 * rotated or revoked first). A lost rotation comes back with the session as
 * the failed condition found it, when the store can tell, so that refresh
 * answers from it without another read.
 */
export type RotationResult =
  | { readonly committed: true }
  | { readonly committed: false; readonly session?: Session }

/**
 * What `createSession` did. Refused when the user's guard failed (disabled,
 * another password, or a logout everywhere that voids the new session), or
 * the session id was taken. `user` is the user as the guard found it, given
 * only when the guard alone refused (core/users.ts `startAfterLogout` decides
 * whether the login may start its session later instead).
 */
export type SessionCreation =
  | { readonly created: true }
  | { readonly created: false; readonly user?: User }

/**
 * Sessions and their token records: the refresh path, revoke, the sessions
 * API and the strict authorizer.
 */
export interface SessionStore {
  /** One batched, strongly consistent read of the user and the session. */
  loadRefreshState(key: { sub: string; sid: string }): Promise<RefreshState>
  /**
   * Whether this hash was retired from this session (a strongly consistent
   * read of its record). Asked only for a hash that is neither the session's
   * current nor its previous one: those are authentic by themselves.
   */
  wasRetired(sid: string, tokenHash: string): Promise<boolean>
  /** A strongly consistent read of one session. */
  getSession(sid: string): Promise<Session | undefined>
  /**
   * Writes a new session, only if the user is still active with the password
   * hash that was checked and no logout everywhere voids a session created at
   * `session.createdAt`, then lists it under its user. A fault after the
   * session was written throws: the caller revokes it (core/login.ts).
   */
  createSession(
    session: Session,
    guard: { sub: string; passwordHash: string },
    events?: readonly SecurityEvent[],
  ): Promise<SessionCreation>
  /**
   * Writes the record of the token `rotation` retires (`rotation.retired`):
   * before `rotate`, so that no committed rotation lacks it. Harmless if the
   * rotation then loses: it names a token that was issued.
   */
  recordRetired(rotation: Rotation): Promise<void>
  /**
   * Commits a rotation with one conditional write of the session. Not
   * committed means someone else rotated (or revoked) first. Safe to send
   * again after a lost answer: a rotation that finds itself already applied is
   * committed.
   */
  rotate(rotation: Rotation): Promise<RotationResult>
  /**
   * Marks a session revoked, with `events`. Revoking a revoked or missing
   * session is a no-op that writes no event either; false then.
   */
  revokeSession(
    sid: string,
    reason: RevocationReason,
    at: number,
    events?: readonly SecurityEvent[],
  ): Promise<boolean>
  /** The user's sessions, newest first, including revoked and expired ones. */
  listSessions(sub: string): Promise<Session[]>
  /** The session and its user, in one strongly consistent read (strict authorizer, sessions API). */
  loadSessionState(key: { sub: string; sid: string }): Promise<SessionState>
}

/** What the authorizer's strict mode reads: one round trip for a session and its user. */
export interface SessionState {
  readonly session?: Session
  readonly user?: User
}

/** The strict authorizer's one read. */
export type SessionStateReader = Pick<SessionStore, 'loadSessionState'>

/** Users: the users command, the sessions API (logout everywhere), password change and the test set-up. */
export interface UserStore {
  /** One read: the user with this normalized username. */
  findUserByUsername(username: string): Promise<User | undefined>
  /** Creates the user unless the username is taken; returns false if it is. */
  createUser(user: User): Promise<boolean>
  /**
   * Changes the status or the roles. `sessionsValidAfter`, when given, voids
   * every session created before that instant (disable, logout everywhere),
   * with no exception: it clears `keptSession`. With `whileLive`, only while
   * the user is active and no earlier cut voids that session (logout
   * everywhere: the caller's own).
   * Returns false when no user has this `sub`, or `whileLive` failed.
   */
  updateUser(
    sub: string,
    change: {
      status?: UserStatus
      roles?: readonly string[]
      sessionsValidAfter?: number
      whileLive?: Pick<Session, 'sid' | 'createdAt'>
    },
    events?: readonly SecurityEvent[],
  ): Promise<boolean>
  /**
   * Replaces the password hash, only over the hash that was checked, and sets
   * `sessionsValidAfter` and `keptSession` in the same single-item write. With
   * `keep`, only while the user is active and no logout everywhere voids that
   * session. `refused` when a condition failed; a retry of a change that
   * committed (its answer lost) finds its own hash and answers `changed`.
   * `events` (`password.changed`) commit in the same write, or not at all.
   */
  changePassword(
    change: PasswordChange,
    events?: readonly SecurityEvent[],
  ): Promise<PasswordChangeResult>
}

/** What a password change writes (core/password-change.ts, core/users.ts `setPassword`). */
export interface PasswordChange {
  readonly sub: string
  /** The hash the current password was checked against, or that the operator's command read. */
  readonly expectHash: string
  readonly newHash: string
  /** Voids every session created before this instant (core/users.ts `voidSessionsUpTo`). */
  readonly sessionsValidAfter: number
  /** The calling session, which lives on; absent when every session ends (`users set-password`). */
  readonly keep?: Pick<Session, 'sid' | 'createdAt'>
}

export type PasswordChangeResult = 'changed' | 'refused'

/** Failed logins in a row for one username, whether or not such a user exists. */
export interface FailedLogins {
  readonly failures: number
  /** Epoch ms of the last failed (or claimed) attempt. */
  readonly lastFailedAt: number
  /**
   * How many times a right password has cleared the count (absent: never). A
   * turn taken before a clear holds nothing of the count after it, so it has
   * nothing left to take back.
   */
  readonly resets?: number
}

/** One failed login as core/throttle.ts `failureAt` describes it. */
export interface LoginFailure {
  /** Epoch ms of the failure. */
  readonly at: number
  /** A count last touched at or before this instant (epoch ms) is forgotten: it restarts at 1. */
  readonly forgetBefore: number
  /** Epoch ms after which DynamoDB may delete the record (its TTL). */
  readonly expiresAt: number
}

/** A free login turn as core/throttle.ts `freeTurn` describes it. */
export interface FreeTurn extends LoginFailure {
  /** The turn is free while fewer than this many recent failures are on record. */
  readonly freeFailures: number
}

/** What `countLoginAttempt` did, and the username's record after it (or as it found it). */
export interface LoginCount {
  /** True when this attempt took a free turn and was counted. */
  readonly counted: boolean
  readonly state: FailedLogins
}

/** What login reads in one request. */
export interface LoginState {
  readonly user?: User
}

/** Login's read and the per-username back-off's counter (core/throttle.ts). */
export interface LoginAttempts {
  /**
   * Login's one read: the user with this normalized username, if any. (The
   * username's failed logins, kept for unknown usernames too, are read by the
   * turn: `countLoginAttempt`.)
   */
  loadLogin(username: string): Promise<LoginState>
  /** Counts one failed login, atomically (concurrent failures all count), with `events`. */
  recordLoginFailure(
    username: string,
    failure: LoginFailure,
    events?: readonly SecurityEvent[],
  ): Promise<void>
  /**
   * Takes a free turn: counts this attempt as a failure up front, atomically,
   * if the username has no record, or fewer than `turn.freeFailures` failures
   * after `turn.forgetBefore`. Otherwise writes nothing and returns the record
   * as it stands (strongly consistent), for core/throttle.ts `loginTurn`.
   */
  countLoginAttempt(username: string, turn: FreeTurn): Promise<LoginCount>
  /**
   * Takes the one attempt a back-off period allows: writes `next` only if the
   * stored failures are still exactly `seen`. False if another attempt took it.
   */
  claimLoginAttempt(
    username: string,
    seen: FailedLogins,
    next: FailedLogins,
    expiresAt: number,
  ): Promise<boolean>
  /**
   * After a success: forgets the failures if the record is still `seen` (what
   * this attempt's turn wrote). If failures landed since, they still count, and
   * only this attempt's own count is taken back (as `giveBackLoginAttempt`).
   */
  clearLoginFailures(username: string, seen: FailedLogins): Promise<void>
  /**
   * After an attempt that checked no password (its DPoP proof refused): takes
   * back the one count its turn added (`turn`, as the turn wrote it), never
   * more. Nothing, if a success cleared the count since: the clear took it.
   */
  giveBackLoginAttempt(username: string, turn: FailedLogins): Promise<void>
}

export type SigningAlgorithm = 'RS256' | 'ES256'

/** A public verification key as published in the JWKS. */
export interface PublicJwk {
  readonly kty: string
  readonly kid: string
  readonly alg: SigningAlgorithm
  readonly use: 'sig'
  readonly [member: string]: unknown
}

export interface Signer {
  readonly alg: SigningAlgorithm
  /** `kid` of the active key: its RFC 7638 thumbprint. */
  keyId(): Promise<string>
  /** Signs a JWS signing input; returns the JWS signature (R||S for ES256). */
  sign(signingInput: Uint8Array): Promise<Uint8Array>
  /** Every verification key, active first, then the retiring ones. */
  publicKeys(): Promise<PublicJwk[]>
}

/**
 * Where security events that no table change carries go: a refusal
 * (`login.throttled`, a reuse only reported, a failed password check, which
 * its turn counted before the check). Written alone, the outbox item still reaches the
 * bus through the table's stream.
 */
export interface EventOutbox {
  /** Writes one event. Answer the request only after it resolved. */
  appendEvent(event: SecurityEvent): Promise<void>
  /**
   * Writes one event unless an event with its id was written before (its id
   * derived from what it reports: core/theft-signals.ts), so that repeats of
   * a refusal cost no event. Answer the request only after it resolved.
   */
  appendEventOnce(event: SecurityEvent): Promise<void>
}

/** A server secret for grace seals, and the name a seal stores to find it again. */
export interface GraceKey {
  /** Base64url characters only: it is one part of the sealed form. */
  readonly name: string
  /** 32 bytes. Never stored in plain form, never logged. */
  readonly secret: Uint8Array
}

/**
 * The server's half of the grace child's key (docs/design.md "Grace child"):
 * a secret that no copy of the table holds. In AWS, KMS data keys: a seal
 * stores the data key wrapped by a KMS key, which only the token function
 * may unwrap.
 */
export interface GraceKeys {
  /** The key new seals use. Cached per container: a warm rotation makes no call for it. */
  current(): Promise<GraceKey>
  /** The secret a seal's key name stands for; undefined when it names no key of ours. */
  open(name: string): Promise<Uint8Array | undefined>
}

export type TelemetryEvent =
  | 'login'
  | 'login_failed'
  | 'refresh'
  | 'grace_replay'
  | 'reuse_detected'
  /** A reuse of a client whose `reuse_detection` is `report`: refused, the session kept. */
  | 'reuse_reported'
  | 'revoke'
  | 'login_throttled'
  | 'password_changed'
  /** A refresh of a DPoP-bound session with a proof of another key (core/theft-signals.ts). */
  | 'dpop_key_mismatch'
  /** A DPoP proof used before, at /login or /token (core/theft-signals.ts). */
  | 'dpop_replayed'
  /** The breached-password range API could not be reached: the password was accepted. */
  | 'breach_check_unavailable'
  /** With several regions: a refresh handed to its session's home region (token/route.ts). */
  | 'refresh_forwarded'
  /** `failover: 'adopt'`: a session taken over from its lost home (core/refresh.ts). */
  | 'refresh_adopted'
  /** `failover: 'adopt'`: a session two regions decided apart, ended (core/forks.ts). */
  | 'session_forked'

/**
 * Where the domain reports what happened, as metrics and log lines (the
 * security events go through the stores). Never pass secrets.
 */
export interface Telemetry {
  emit(event: TelemetryEvent, fields?: Record<string, string | number>): void
}

export const noTelemetry: Telemetry = { emit: () => {} }
