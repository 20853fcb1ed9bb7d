import { type IssuedAccessToken, issueAccessToken } from './access-token.js'
import type { Client } from './clients.js'
import type { DpopProof } from './dpop.js'
import { type ProofUse, readWithProof } from './dpop-grant.js'
import { InvalidDpopProof, InvalidGrant, TemporarilyUnavailable } from './errors.js'
import type {
  EventOutbox,
  GraceKeys,
  RefreshState,
  Rotation,
  Session,
  SessionStore,
  Signer,
  User,
} from './ports.js'
import {
  hashToken,
  newRefreshToken,
  openChild,
  parseRefreshToken,
  type RefreshTokenLocator,
  sameHash,
  sealChild,
  sealKeyName,
} from './refresh-token.js'
import { HomeMoved, homeOfSession } from './regions.js'
import { pause, RETRIES } from './retries.js'
import { type RequestOrigin, securityEvent, sessionRevoked } from './security-events.js'
import { type Deps, grantScope, type TokenResult } from './service.js'
import { reportTheftSignal } from './theft-signals.js'
import { voidedByUser } from './users.js'

export interface RefreshInput {
  readonly refreshToken: string
  /** The client, already looked up by the HTTP layer. */
  readonly client: Client
  readonly scope?: string
  /** Where the request came from, for the security events. */
  readonly origin?: RequestOrigin
  /** The request's DPoP proof, already verified (core/dpop-grant.ts). */
  readonly proof?: DpopProof | undefined
  /**
   * `failover: 'adopt'`: the session's home, `from`, did not answer and is declared lost;
   * this region may take over a session whose item still homes it there.
   */
  readonly adopt?: { readonly from: string }
}

/**
 * What refresh works with: the sessions, the signer, the server's grace keys,
 * the outbox for a reported reuse, and DPoP's single use.
 */
export interface RefreshDeps extends Deps {
  readonly sessions: SessionStore
  readonly signer: Signer
  readonly graceKeys: GraceKeys
  readonly outbox: EventOutbox
  readonly dpop: ProofUse
}

/**
 * Exchanges a refresh token for a new pair (docs/design.md "Sessions, rotation,
 * reuse", rules 1 to 7). Network stages on success: one batched read (and a
 * DPoP proof's single use alongside); the signature alongside the retired
 * token's record; then the one conditional write of the session.
 */
export async function refresh(deps: RefreshDeps, input: RefreshInput): Promise<TokenResult> {
  const { sessions, clock } = deps
  const { client } = input
  const locator = parseRefreshToken(input.refreshToken)
  if (!locator) throw new InvalidGrant('malformed_refresh_token')

  const presentedHash = hashToken(input.refreshToken)
  // A theft signal names the session only for a token it issued: garbage concerns no one.
  const signal = async (found: RefreshState | undefined) => ({
    ...(found?.session &&
    found.session.sub === locator.sub &&
    (await issuedFor(sessions, found.session, presentedHash).catch(() => false))
      ? { subject: found.session.sub, sid: found.session.sid }
      : {}),
    clientId: client.clientId,
    origin: input.origin,
  })
  const state = await readWithProof(
    deps.dpop,
    input.proof,
    () => sessions.loadRefreshState(locator),
    async (found) =>
      reportTheftSignal(deps, 'dpop.proof_replayed', clock.now(), await signal(found)),
  )
  const { user, session: found } = state
  // Garbage that merely names a session is refused here, before any rule can revoke it.
  if (!found || found.sub !== locator.sub || !(await issuedFor(sessions, found, presentedHash))) {
    throw new InvalidGrant('unknown_refresh_token')
  }
  let session: Session = found
  // With several regions: only the region the item homes the session in decides it.
  assertHomedHere(deps, session, input.adopt)
  if (session.clientId !== client.clientId) {
    throw new InvalidGrant('other_client')
  }
  if (session.jkt !== undefined && input.proof && input.proof.jkt !== session.jkt) {
    // The refresh token of a bound session without its key: stolen, or a copy of it.
    await reportTheftSignal(deps, 'dpop.key_mismatch', clock.now(), {
      subject: session.sub,
      sid: session.sid,
      clientId: client.clientId,
      origin: input.origin,
    })
  }
  assertProofOfPossession(session, client, input.proof)
  const now = clock.now()
  assertUsable(session, user, now)
  const scope =
    input.scope === undefined ? session.scope : grantScope(input.scope, session.scope.split(' '))

  let accessToken: IssuedAccessToken | undefined
  const presented: PresentedToken = { token: input.refreshToken, hash: presentedHash, locator }
  for (let attempt = 1; ; attempt++) {
    if (sameHash(presentedHash, session.currentHash)) {
      // Rule 1: rotate. Rule 7: answer only once the one conditional write committed.
      const rotated = await rotate(deps, {
        client,
        session,
        user,
        scope,
        now,
        presented,
        accessToken,
        adopt: input.adopt,
      })
      if (rotated.result) return rotated.result
      accessToken = rotated.accessToken
      // Rule 4: someone else rotated (or revoked) first; answer as they left it.
      const fresh: Session | undefined = rotated.found ?? (await sessions.getSession(session.sid))
      if (!fresh) throw new InvalidGrant('session_disappeared')
      assertHomedHere(deps, fresh, input.adopt)
      assertUsable(fresh, user, now)
      if (sameHash(presentedHash, fresh.currentHash)) {
        // A transaction conflict that left the session unchanged: try again, a few times.
        if (attempt >= RETRIES.rotationAttempts) {
          throw new TemporarilyUnavailable('rotation kept colliding with another writer')
        }
        await pause(attempt)
      }
      session = fresh
      continue
    }
    if (sameHash(presentedHash, session.previousHash) && withinGrace(session, client, now)) {
      return graceReplay(deps, { client, session, user, scope, now, presented, accessToken })
    }
    return detectedReuse(deps, session, client, input.origin ?? {})
  }
}

interface PresentedToken {
  readonly token: string
  readonly hash: string
  readonly locator: RefreshTokenLocator
}

interface RotationContext {
  readonly client: Client
  readonly session: Session
  readonly user: User | undefined
  readonly scope: string
  readonly now: number
  readonly presented: PresentedToken
  /** Signed in an earlier attempt of this same request, still good to send. */
  readonly accessToken: IssuedAccessToken | undefined
  readonly adopt?: RefreshInput['adopt']
}

/**
 * The regions, when sessions may move (`failover: 'adopt'`): with `relogin` a session's
 * home never changes, so its token's home, which the route forwards by, is the item's.
 */
function adopting(deps: RefreshDeps) {
  const regions = deps.settings.regions
  return regions?.failover === 'adopt' ? regions : undefined
}

/**
 * Several regions (docs/multi-region.md "Adoption"): the session item's `home` (absent: the
 * primary) says who decides, whatever the token says, since an adoption moves the home and
 * leaves the tokens issued before it as they were. Homed elsewhere: HomeMoved, and the route
 * hands the request there; except the lost home this request may adopt from.
 */
function assertHomedHere(deps: RefreshDeps, session: Session, adopt: RefreshInput['adopt']): void {
  const regions = adopting(deps)
  if (!regions) return
  const home = homeOfSession(session, regions)
  if (home !== regions.here && home !== adopt?.from) throw new HomeMoved(home)
}

/** What a rotation writes of the session's home: held as read, or moved here (adoption). */
function homeOfRotation(deps: RefreshDeps, context: RotationContext): Rotation['home'] {
  const regions = adopting(deps)
  if (!regions) return undefined
  const { session, adopt } = context
  const expected = session.home
  if (!adopt || homeOfSession(session, regions) === regions.here) return { expected }
  return {
    expected,
    adopt: { home: regions.here, epoch: (session.epoch ?? 0) + 1, adoptedAt: session.generation },
  }
}

/**
 * DPoP (docs/design.md "DPoP"): a bound session refreshes only with a proof of
 * its key, grace replays included, since this comes before the rules that
 * rotate, replay or revoke: a refusal changes nothing. A client that requires
 * DPoP cannot refresh a session that was never bound.
 */
function assertProofOfPossession(
  session: Session,
  client: Client,
  proof: DpopProof | undefined,
): void {
  if (session.jkt === undefined) {
    if (client.dpop === 'required') throw new InvalidGrant('dpop_required')
    return
  }
  if (!proof) throw new InvalidDpopProof('the refresh token is bound to a key: send a proof of it')
  if (proof.jkt !== session.jkt) throw new InvalidGrant('dpop_key_mismatch')
}

/**
 * Whether `hash` was issued for `session` (rule 3's "authentic"): its current
 * or previous token (a hash match of a 256-bit secret), or a token an earlier
 * rotation retired, whose record is read only then. Garbage is none of these.
 */
export async function issuedFor(
  sessions: Pick<SessionStore, 'wasRetired'>,
  session: Session,
  hash: string,
): Promise<boolean> {
  if (sameHash(hash, session.currentHash) || sameHash(hash, session.previousHash)) return true
  return sessions.wasRetired(session.sid, hash)
}

/** Rules 5 and 6: expiry is checked here, not left to TTL; the user is read fresh. */
function assertUsable(session: Session, user: User | undefined, now: number): asserts user is User {
  if (session.status !== 'active')
    throw new InvalidGrant('session_not_active', session.revokedReason ?? 'revoked')
  if (now >= session.absoluteExpiresAt) throw new InvalidGrant('session_expired')
  if (now >= session.idleExpiresAt) throw new InvalidGrant('session_idle')
  if (user?.status !== 'active') throw new InvalidGrant('user_not_active')
  if (voidedByUser(session, user)) {
    throw new InvalidGrant('session_voided')
  }
}

/** Rule 2, and rule 4's "a grace of 0 makes a concurrent duplicate count as reuse". */
function withinGrace(session: Session, client: Client, now: number): boolean {
  return (
    client.reuseGraceSeconds > 0 &&
    session.rotatedAt !== undefined &&
    now - session.rotatedAt <= client.reuseGraceSeconds * 1000
  )
}

/**
 * Rule 1, committed as rule 7 wants it: the access token is signed, and the
 * presented token's record written (rule 3: once it has left the session, the
 * record still tells its reuse from garbage), both before the rotation's one
 * conditional write. So a KMS fault or throttle, or a DynamoDB one, never
 * leaves a committed rotation unanswered: the presented token stays current
 * and a retry after `Retry-After` rotates it, however late (the record alone
 * changes nothing: it names a token that was issued). Only a write that
 * committed and whose every answer was lost is left to grace (rule 2).
 */
async function rotate(
  deps: RefreshDeps,
  context: RotationContext & { user: User },
): Promise<{ result?: TokenResult; accessToken?: IssuedAccessToken; found?: Session }> {
  const { sessions, signer, telemetry, settings, graceKeys } = deps
  const { client, session, user, scope, now, presented } = context
  // An adopted session's child is homed here, so that its refreshes come here.
  const child = newRefreshToken(
    context.adopt && deps.settings.regions
      ? { ...presented.locator, home: deps.settings.regions.here }
      : presented.locator,
  )
  // Cached per container: no call on a warm rotation. A failure here writes nothing (rule 7).
  const serverKey = await graceKeys.current()
  const rotation: Rotation = {
    sid: session.sid,
    expect: { currentHash: session.currentHash, generation: session.generation },
    next: {
      currentHash: hashToken(child),
      previousHash: presented.hash,
      generation: session.generation + 1,
      rotatedAt: now,
      sealedSuccessor: sealChild(presented.token, session.sid, child, serverKey),
      lastUsedAt: now,
      idleExpiresAt: Math.min(now + client.refreshIdleTtlSeconds * 1000, session.absoluteExpiresAt),
    },
    retired: {
      hash: session.currentHash,
      generation: session.generation,
      issuedAt: session.rotatedAt ?? session.createdAt,
    },
    absoluteExpiresAt: session.absoluteExpiresAt,
    ...(adopting(deps) && { home: homeOfRotation(deps, context) }),
  }
  const [signed, recorded] = await Promise.allSettled([
    context.accessToken ??
      issueAccessToken(signer, settings, { user, session, client, scope, now }),
    sessions.recordRetired(rotation),
  ])
  // Nothing committed yet: the presented token is still current (rule 7).
  if (signed.status === 'rejected') throw signed.reason
  if (recorded.status === 'rejected') throw recorded.reason
  const accessToken = signed.value
  const written = await sessions.rotate(rotation)
  if (!written.committed) {
    return { accessToken, ...(written.session && { found: written.session }) }
  }
  telemetry.emit('refresh', { client_id: client.clientId })
  if (rotation.home?.adopt) telemetry.emit('refresh_adopted', { client_id: client.clientId })
  return {
    result: {
      client,
      accessToken,
      refreshToken: child,
      scope,
      sessionExpiresAt: session.absoluteExpiresAt,
    },
  }
}

/** Rule 2: the retired token, replayed within grace, gets the same child and a fresh access token. */
async function graceReplay(
  deps: RefreshDeps,
  context: RotationContext & { user: User },
): Promise<TokenResult> {
  const { signer, telemetry, settings } = deps
  const { client, session, user, scope, now, presented } = context
  const [child, accessToken] = await Promise.all([
    openSealedSuccessor(deps, session, presented.token),
    context.accessToken ??
      issueAccessToken(signer, settings, { user, session, client, scope, now }),
  ])
  if (!child) throw new InvalidGrant('sealed_successor_unopenable')
  telemetry.emit('grace_replay', { client_id: client.clientId })
  return {
    client,
    accessToken,
    refreshToken: child,
    scope,
    sessionExpiresAt: session.absoluteExpiresAt,
  }
}

/** The sealed child, opened with the parent and the server key its seal names. */
async function openSealedSuccessor(
  deps: RefreshDeps,
  session: Session,
  parent: string,
): Promise<string | undefined> {
  const sealed = session.sealedSuccessor
  if (!sealed) return undefined
  const name = sealKeyName(sealed)
  const secret = name === undefined ? undefined : await deps.graceKeys.open(name)
  return openChild(parent, session.sid, sealed, secret)
}

/**
 * Rule 3: an authentic but retired token, outside grace: the whole session
 * ends, with `token.reuse_detected` and `session.revoked` in the same write.
 * A client in `report` mode refuses the token too but keeps the session: the
 * event (`"enforced": false`) is written alone, to count false positives
 * before enforcing (docs/security.md).
 */
async function detectedReuse(
  deps: RefreshDeps,
  session: Session,
  client: Client,
  origin: RequestOrigin,
): Promise<never> {
  const { sessions, outbox, clock, telemetry } = deps
  const at = clock.now()
  const enforced = client.reuseDetection === 'enforce'
  const detected = securityEvent('token.reuse_detected', at, {
    subject: session.sub,
    data: { sid: session.sid, client_id: session.clientId, enforced },
    origin,
  })
  const fields = { client_id: session.clientId, sid: session.sid }
  if (!enforced) {
    await outbox.appendEvent(detected)
    telemetry.emit('reuse_reported', fields)
    throw new InvalidGrant('reuse_reported')
  }
  const revoked = sessionRevoked(session, 'reuse', at, origin)
  // False: revoked meanwhile (a concurrent reuse, a logout), which wrote its own events.
  if (await sessions.revokeSession(session.sid, 'reuse', at, [detected, revoked])) {
    telemetry.emit('reuse_detected', fields)
  }
  throw new InvalidGrant('reuse_detected')
}
