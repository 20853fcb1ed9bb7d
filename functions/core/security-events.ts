import { createHash, randomUUID } from 'node:crypto'
import type { Session } from './ports.js'
import type { GrantRefusal } from './refusals.js'

/**
 * Security events (docs/design.md "Security events"; catalog: docs/events.md).
 *
 * Core decides WHAT happened: the type, the subject and the data of each
 * event. The store writes each event as an outbox item in the same DynamoDB
 * write as the change it reports (or alone, for a refusal that changes
 * nothing), and the forwarder sends it on from the table's stream, so that an
 * event exists if and only if its change committed.
 *
 * An event never carries a token, a password, a hash, or the username of a
 * failed login: the data below is a closed set of fields, none of them secret.
 */

export const SECURITY_EVENT_TYPES = [
  'login.succeeded',
  'login.failed',
  'login.throttled',
  'token.reuse_detected',
  'session.revoked',
  'sessions.ended_all',
  'user.disabled',
  'user.enabled',
  'password.changed',
  'dpop.key_mismatch',
  'dpop.proof_replayed',
] as const

export type SecurityEventType = (typeof SECURITY_EVENT_TYPES)[number]

/**
 * Why a session ended: its `session.revoked` event's `reason`, and the
 * session item's `revoked_reason`. `login_aborted`: the login wrote the
 * session but could not send its tokens (a signing fault), so it ended it.
 * `forked`: under `failover: 'adopt'`, two regions decided the session apart
 * (core/forks.ts), and the family was ended.
 */
export type RevocationReason =
  | 'revoked'
  | 'reuse'
  | 'logout_everywhere'
  | 'user_disabled'
  | 'password_changed'
  | 'ended_by_user'
  | 'login_aborted'
  | 'forked'

/** Why a login failed, for `login.failed` (the HTTP answer is the same for all three). */
/** A `login.failed` event's reason: the refusal's own code (core/refusals.ts), one name for both. */
export type LoginFailureReason = Extract<
  GrantRefusal,
  'unknown_username' | 'wrong_password' | 'user_disabled'
>

/** Where a request came from, as the HTTP layer knows it. Both parts are optional. */
export interface RequestOrigin {
  /** The client's IP address as API Gateway saw it (`requestContext.http.sourceIp`). */
  readonly sourceIp?: string
  readonly userAgent?: string
}

/** An event's `data`: a closed set of non-secret fields, each present only where known. */
export interface SecurityEventData {
  /** The session concerned (for `sessions.ended_all` and `password.changed`: the caller's). */
  readonly sid?: string
  readonly client_id?: string
  readonly reason?: RevocationReason | LoginFailureReason
  /** `token.reuse_detected`: false when the client's `reuse_detection` is `report`. */
  readonly enforced?: boolean
  /** `login.throttled`: the `Retry-After` the client was given. */
  readonly retry_after_seconds?: number
  readonly source_ip?: string
  readonly user_agent?: string
}

/** What core decided; the outbox item stores exactly this. */
export interface SecurityEvent {
  /** A UUID, fixed when core decides the event: the CloudEvent `id`, kept across every retry. */
  readonly id: string
  readonly type: SecurityEventType
  /** Epoch ms: the instant of the change. */
  readonly time: number
  /** The user's `sub`. Absent only for a login with an unknown username. */
  readonly subject?: string
  readonly data: SecurityEventData
}

/** A CloudEvents 1.0 envelope in its JSON format, `data` inline. */
export interface CloudEvent {
  readonly specversion: '1.0'
  readonly id: string
  readonly source: string
  readonly type: SecurityEventType
  /** RFC 3339. */
  readonly time: string
  readonly subject?: string
  readonly datacontenttype: 'application/json'
  readonly data: SecurityEventData
}

/** The longest user agent an event carries, in code points (the session item keeps as much). */
export const MAX_USER_AGENT_CHARS = 256

/** A user agent cut to `MAX_USER_AGENT_CHARS` code points, so that a cut never splits a pair. */
export const boundedUserAgent = (userAgent: string): string =>
  Array.from(userAgent).slice(0, MAX_USER_AGENT_CHARS).join('')

/**
 * A new event of `type` at `time`, with a fresh id. `origin` adds `source_ip`
 * and `user_agent`; `subject` is the user's `sub`.
 */
export function securityEvent(
  type: SecurityEventType,
  time: number,
  fields: {
    readonly subject?: string
    readonly data?: Omit<SecurityEventData, 'source_ip' | 'user_agent'>
    readonly origin?: RequestOrigin
  } = {},
): SecurityEvent {
  const { subject, data = {}, origin = {} } = fields
  return {
    id: randomUUID(),
    type,
    time,
    ...(subject === undefined ? {} : { subject }),
    data: {
      ...data,
      ...(origin.sourceIp ? { source_ip: origin.sourceIp } : {}),
      ...(origin.userAgent ? { user_agent: boundedUserAgent(origin.userAgent) } : {}),
    },
  }
}

/**
 * How long one theft signal stands for what it is about (a session, or at
 * login a user): one event of each type per window (core/theft-signals.ts).
 */
export const SIGNAL_WINDOW_MS = 3_600_000

/**
 * The id of the one event of `type` about `about` in the window of `time`: a
 * UUID (version 8, RFC 9562) from the SHA-256 of the three, so that every
 * refusal in the window decides the same event, and the outbox, which writes
 * an id once, keeps the first.
 */
export function signalEventId(type: SecurityEventType, about: string, time: number): string {
  const window = Math.floor(time / SIGNAL_WINDOW_MS)
  return uuidOf(`${type}\n${about}\n${window}`)
}

/**
 * The id of an event that can happen once only, whichever region writes it: the end of a
 * forked session (core/forks.ts), which two regions may both write when the home's answer
 * to the forward was lost. Both write the same outbox item, and a copy on the bus carries
 * the same id, for consumers to drop.
 */
export function onceOnlyEventId(type: SecurityEventType, about: string): string {
  return uuidOf(`${type}\n${about}\nonce`)
}

/** A UUID (version 8, RFC 9562) made of the first bytes of `text`'s SHA-256. */
function uuidOf(text: string): string {
  const bytes = createHash('sha256').update(text).digest().subarray(0, 16)
  bytes[6] = ((bytes[6] as number) & 0x0f) | 0x80
  bytes[8] = ((bytes[8] as number) & 0x3f) | 0x80
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/** `session.revoked` for `session`, which `reason` ends at `time`. */
export const sessionRevoked = (
  session: Pick<Session, 'sid' | 'sub' | 'clientId'>,
  reason: RevocationReason,
  time: number,
  origin?: RequestOrigin,
): SecurityEvent =>
  securityEvent('session.revoked', time, {
    subject: session.sub,
    data: { sid: session.sid, client_id: session.clientId, reason },
    ...(origin ? { origin } : {}),
  })

/**
 * The CloudEvents 1.0 envelope of an event. `source` identifies the service
 * that emitted it: the issuer (`ISSUER`), so that two deployments never share
 * an id space.
 */
export function toCloudEvent(event: SecurityEvent, source: string): CloudEvent {
  return {
    specversion: '1.0',
    id: event.id,
    source,
    type: event.type,
    time: new Date(event.time).toISOString(),
    ...(event.subject === undefined ? {} : { subject: event.subject }),
    datacontenttype: 'application/json',
    data: event.data,
  }
}
