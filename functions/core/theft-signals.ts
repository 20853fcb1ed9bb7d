import type { EventOutbox, Telemetry } from './ports.js'
import { type RequestOrigin, securityEvent, signalEventId } from './security-events.js'

/**
 * DPoP refusals that signal theft (docs/events.md): a refresh of a bound
 * session with a proof of another key (someone holds the refresh token, not
 * the key), and a proof used before (someone copied a request the client
 * sent). Both are refused as before; on top, each is counted in a metric,
 * every time, and reported as a security event at most once an hour per
 * session (at /login, per user): the event's id is derived from its type,
 * what it is about and the hour (`signalEventId`), and the outbox writes an
 * id only once. So a flood of refusals costs one event, not one per request.
 *
 * A refusal that names no user (an unknown username, a refresh token that no
 * session issued) is counted, and writes no event: it concerns no account,
 * and anyone could repeat it with proofs of their own at new usernames.
 */
export type TheftSignal = 'dpop.key_mismatch' | 'dpop.proof_replayed'

export interface TheftSignalDeps {
  readonly outbox: EventOutbox
  readonly telemetry: Telemetry
}

export interface TheftSignalSubject {
  /** The user's `sub`, when the refusal concerns one. */
  readonly subject?: string | undefined
  /** The session concerned (at /token); none at /login. */
  readonly sid?: string | undefined
  readonly clientId: string
  readonly origin?: RequestOrigin | undefined
}

/** Counts the signal and writes its event, once per window (see above). */
export async function reportTheftSignal(
  deps: TheftSignalDeps,
  type: TheftSignal,
  at: number,
  about: TheftSignalSubject,
): Promise<void> {
  deps.telemetry.emit(type === 'dpop.key_mismatch' ? 'dpop_key_mismatch' : 'dpop_replayed', {
    client_id: about.clientId,
    ...(about.sid === undefined ? {} : { sid: about.sid }),
  })
  if (about.subject === undefined) return
  const event = securityEvent(type, at, {
    subject: about.subject,
    data: { ...(about.sid === undefined ? {} : { sid: about.sid }), client_id: about.clientId },
    ...(about.origin ? { origin: about.origin } : {}),
  })
  await deps.outbox.appendEventOnce({
    ...event,
    id: signalEventId(type, about.sid ?? `user ${about.subject}`, at),
  })
}
