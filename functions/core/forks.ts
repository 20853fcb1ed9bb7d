/**
 * Fork detection under `failover: 'adopt'` (docs/multi-region.md "Fork detection").
 *
 * Under MREC last writer wins: when two regions decided one session apart (the old home
 * rotated in its last replication window, and the adopter took the session over from a
 * replica that had not seen it; or the old home, cut off but alive, rotated over an
 * adoption), the region whose write lost sees the winner's write overwrite its own in its
 * stream (OldImage to NewImage); the winner's region sees nothing. So each fork shows up
 * once, in one region, as a replaced session item whose new state does not descend from
 * the old one.
 */
import type { SessionStore } from './ports.js'
import type { HomeRegion, Regions } from './regions.js'
import { homeOfSession } from './regions.js'
import { onceOnlyEventId, sessionRevoked } from './security-events.js'

/** What the rule compares of a session item (absent epoch: 0). */
export interface Lineage {
  readonly generation: number
  readonly epoch?: number
  readonly adoptedAt?: number
  readonly home?: string
}

/**
 * Whether `next` overwrote `previous` without descending from it:
 * - a later epoch adopted at a generation below the one `previous` had reached: the adopter
 *   did not see rotations the old home made;
 * - an earlier epoch: a write of the old home overwrote an adoption;
 * - the same epoch in another home: two regions adopted at once (three regions or more);
 * - the same epoch and home, a lower generation: never written by one home, so a fork too.
 */
export function isFork(previous: Lineage, next: Lineage): boolean {
  const before = previous.epoch ?? 0
  const after = next.epoch ?? 0
  if (after > before) return (next.adoptedAt ?? 0) < previous.generation
  if (after < before) return true
  if (after > 0 && next.home !== previous.home) return true
  return next.generation < previous.generation
}

/** What ending a forked family needs. */
export interface ForkDeps {
  readonly sessions: Pick<SessionStore, 'getSession' | 'revokeSession'>
  readonly clock: { now(): number }
  /** With several regions: this one and the others. */
  readonly regions?: Regions
  /** The way to another region's fork consumer (the same function everywhere). */
  readonly homeRegion?: HomeRegion
}

/** A forwarded request to end a forked session in its home (a member of the invocation). */
export interface ForkedSession {
  readonly forkedSession: string
}

/**
 * Ends the family of a forked session: decided in its converged item's home, as a
 * single-session revocation is (forwarded there), written here when that home is this
 * region or cannot be reached. One `session.revoked` event (`forked`), written by the
 * region that revokes; a session already revoked (or gone) writes nothing (revokeSession's
 * rule): `unchanged`.
 */
export async function endForkedSession(
  deps: ForkDeps,
  converged: { readonly sid: string; readonly home?: string },
  options: { readonly forwarded?: boolean } = {},
): Promise<'revoked' | 'forwarded' | 'unchanged'> {
  const { regions, homeRegion } = deps
  const home = regions ? homeOfSession(converged, regions) : undefined
  if (regions && homeRegion && !options.forwarded && home !== regions.here && home) {
    const payload: ForkedSession = { forkedSession: converged.sid }
    const answer = await homeRegion.forward(home, payload)
    if (answer !== 'unreachable') return 'forwarded'
  }
  const session = await deps.sessions.getSession(converged.sid)
  if (!session) return 'unchanged'
  const at = deps.clock.now()
  // One id whichever region writes it: a forward whose answer was lost (a timeout) may have
  // revoked in the home too, and then both wrote this same outbox item.
  const event = {
    ...sessionRevoked(session, 'forked', at),
    id: onceOnlyEventId('session.revoked', `forked\n${session.sid}`),
  }
  const revoked = await deps.sessions.revokeSession(session.sid, 'forked', at, [event])
  return revoked ? 'revoked' : 'unchanged'
}
