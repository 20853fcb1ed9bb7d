/**
 * Item codecs (docs/design.md "Storage"): each entity to its DynamoDB item and
 * back, keyed and indexed as `table.ts` lays the table out. Attribute names
 * are snake_case; times are epoch ms, except the TTL attribute (epoch seconds).
 * The adapters' update and condition expressions name the same attributes.
 */
import { createHash } from 'node:crypto'
import type { AttributeValue, DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb'
import { unmarshall } from '@aws-sdk/util-dynamodb'
import type { DpopProof } from '../../core/dpop.js'
import type { FailedLogins, Session, User } from '../../core/ports.js'
import type { RegionDeclaration } from '../../core/regions.js'
import { indexedAt, itemKey, type Key, TABLE_SCHEMA, ttlSeconds } from './table.js'

/**
 * The stored user agent's cap, in UTF-8 bytes (cut at a character boundary).
 * It keeps a session item under 1 KB, so that a rotation, which rewrites the
 * item, costs one write unit (docs/design.md "Items"); the security events
 * keep their own, longer cap.
 */
export const MAX_STORED_USER_AGENT_BYTES = 160

/** `text` cut to at most `bytes` UTF-8 bytes, never inside a character. */
export function utf8Prefix(text: string, bytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= bytes) return text
  let kept = ''
  let size = 0
  for (const character of text) {
    size += Buffer.byteLength(character, 'utf8')
    if (size > bytes) break
    kept += character
  }
  return kept
}

/** An item in the document client's native form. */
export type Item = Record<string, unknown>

/** The document client every adapter uses: optional fields left undefined are not written. */
export const documentClient = (client: DynamoDBClient): DynamoDBDocumentClient =>
  DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } })

/** The item among `items` with exactly this key, if any. */
export function withKey(items: readonly Item[], key: Key): Item | undefined {
  const { partitionKey, sortKey } = TABLE_SCHEMA
  return items.find((item) => item[partitionKey] === key.pk && item[sortKey] === key.sk)
}

export const userItem = {
  toItem(user: User): Item {
    return {
      ...itemKey.user(user.sub),
      ...indexedAt.user(user.username),
      sub: user.sub,
      username: user.username,
      password_hash: user.passwordHash,
      roles: [...user.roles],
      status: user.status,
      sessions_valid_after: user.sessionsValidAfter,
      kept_session: user.keptSession,
      created_at: user.createdAt,
    }
  },

  fromItem(item: Item): User {
    return {
      sub: item.sub as string,
      username: item.username as string,
      passwordHash: item.password_hash as string,
      roles: (item.roles as string[] | undefined) ?? [],
      // Anything but `active` is disabled: an unknown status never lets anyone in.
      status: item.status === 'active' ? 'active' : 'disabled',
      ...(typeof item.sessions_valid_after === 'number'
        ? { sessionsValidAfter: item.sessions_valid_after }
        : {}),
      ...(typeof item.kept_session === 'string' ? { keptSession: item.kept_session } : {}),
      createdAt: item.created_at as number,
    }
  },

  /** A user item as DynamoDB returns it in a cancellation reason (attribute-value form). */
  fromAttributeValues(item: Record<string, AttributeValue>): User {
    return userItem.fromItem(unmarshall(item))
  },
}

/** The username's claim: written with the user, so that a username is taken at most once. */
export const usernameClaimItem = {
  toItem(user: User): Item {
    return { ...itemKey.usernameClaim(user.username), sub: user.sub }
  },
}

/**
 * A session. Not indexed: its pointer (below) lists it under its user, so a
 * rotation, which rewrites this item, writes nothing else. Sessions written
 * before issue 17 carry gsi1 keys instead (table.ts `legacyIndexedAt`); they
 * read the same.
 */
export const sessionItem = {
  toItem(session: Session): Item {
    return {
      ...itemKey.session(session.sid),
      sid: session.sid,
      sub: session.sub,
      client_id: session.clientId,
      scope: session.scope,
      status: session.status,
      revoked_reason: session.revokedReason,
      created_at: session.createdAt,
      last_used_at: session.lastUsedAt,
      idle_expires_at: session.idleExpiresAt,
      absolute_expires_at: session.absoluteExpiresAt,
      generation: session.generation,
      current_hash: session.currentHash,
      previous_hash: session.previousHash,
      rotated_at: session.rotatedAt,
      grace_child: session.sealedSuccessor,
      user_agent:
        session.userAgent === undefined
          ? undefined
          : utf8Prefix(session.userAgent, MAX_STORED_USER_AGENT_BYTES),
      jkt: session.jkt,
      home: session.home,
      epoch: session.epoch,
      adopted_at: session.adoptedAt,
      [TABLE_SCHEMA.ttlAttribute]: ttlSeconds(
        Math.min(session.idleExpiresAt, session.absoluteExpiresAt),
      ),
    }
  },

  fromItem(item: Item): Session {
    const optional = <K extends string>(key: K, value: unknown) =>
      value === undefined ? {} : ({ [key]: value } as Record<K, never>)
    return {
      sid: item.sid as string,
      sub: item.sub as string,
      clientId: item.client_id as string,
      scope: item.scope as string,
      // Anything but `active` is revoked: an unknown status never refreshes.
      status: item.status === 'active' ? 'active' : 'revoked',
      createdAt: item.created_at as number,
      lastUsedAt: item.last_used_at as number,
      idleExpiresAt: item.idle_expires_at as number,
      absoluteExpiresAt: item.absolute_expires_at as number,
      generation: item.generation as number,
      currentHash: item.current_hash as string,
      ...optional('revokedReason', item.revoked_reason),
      ...optional('previousHash', item.previous_hash),
      ...optional('rotatedAt', item.rotated_at),
      ...optional('sealedSuccessor', item.grace_child),
      ...optional('userAgent', item.user_agent),
      ...optional('jkt', item.jkt),
      ...optional('home', item.home),
      ...optional('epoch', item.epoch),
      ...optional('adoptedAt', item.adopted_at),
    }
  },
}

/**
 * Lists a session under its user (`GET /sessions`, logout everywhere): the
 * user's partition holds one per session, written once, right after the
 * session, and never changed. It holds keys only: the list reads the
 * sessions themselves.
 */
export const sessionPointerItem = {
  toItem(session: Pick<Session, 'sub' | 'sid' | 'absoluteExpiresAt'>): Item {
    return {
      ...itemKey.sessionPointer(session.sub, session.sid),
      [TABLE_SCHEMA.ttlAttribute]: ttlSeconds(session.absoluteExpiresAt),
    }
  },

  /** The sid a pointer names. */
  sidOf(item: Item): string {
    return String(item[TABLE_SCHEMA.sortKey]).slice(itemKey.sessionPointer('', '').sk.length)
  },
}

/**
 * A record that a token hash was issued for a session, kept until the
 * session's absolute expiry: it lets a retired token be recognised as
 * authentic (reuse) rather than garbage. Only its existence is ever read.
 * A rotation writes the record of the token it retires, before the session
 * changes; the session's current and previous hashes are authentic by
 * themselves. (Before issue 17 every token's record was written when it was
 * issued, login's included: those records read the same.)
 */
export interface IssuedToken {
  readonly sid: string
  readonly hash: string
  /** The session's generation when the token was issued (0 at login). */
  readonly generation: number
  readonly issuedAt: number
  /** The session's absolute expiry: the record is useless after it. */
  readonly absoluteExpiresAt: number
}

export const issuedTokenItem = {
  toItem(token: IssuedToken): Item {
    return {
      ...itemKey.issuedToken(token.sid, token.hash),
      generation: token.generation,
      issued_at: token.issuedAt,
      [TABLE_SCHEMA.ttlAttribute]: ttlSeconds(token.absoluteExpiresAt),
    }
  },
}

/**
 * A grace seal's server key (docs/design.md "Grace child"): the KMS-wrapped
 * data key a container seals under, written once before its first seal,
 * under the short reference the seals carry. Kept a week: a seal is opened
 * only within its grace window, and a container seals under one key for an
 * hour at most (kms-grace-keys.ts).
 */
export const graceKeyItem = {
  toItem(ref: string, wrapped: string, at: number): Item {
    return {
      ...itemKey.graceKey(ref),
      wrapped,
      [TABLE_SCHEMA.ttlAttribute]: ttlSeconds(at + GRACE_KEY_RETENTION_MS),
    }
  },

  wrappedOf(item: Item | undefined): string | undefined {
    return typeof item?.wrapped === 'string' ? item.wrapped : undefined
  },
}

/** How long a grace key's item stays in the table (TTL clean-up only). */
export const GRACE_KEY_RETENTION_MS = 7 * 86_400_000

/**
 * The username's failed logins. Written only by update expressions
 * (login-throttle.ts), since concurrent failures must add up atomically.
 */
export const failedLoginsItem = {
  fromItem(item: Item): FailedLogins {
    return {
      failures: typeof item.failures === 'number' ? item.failures : 0,
      lastFailedAt: typeof item.last_failed_at === 'number' ? item.last_failed_at : 0,
      ...(typeof item.resets === 'number' ? { resets: item.resets } : {}),
    }
  },
}

/**
 * A DPoP proof used at the token endpoint, kept until the proof's own end
 * (`acceptedUntil`): a second proof with its key and `jti` is a replay. The
 * `jti` is stored hashed, so a client's choice of `jti` (any length, any
 * character) always makes a key of one size.
 */
export const dpopProofItem = {
  key(proof: Pick<DpopProof, 'jkt' | 'jti'>): Key {
    return itemKey.dpopProof(proof.jkt, createHash('sha256').update(proof.jti).digest('base64url'))
  },

  /** `attempt` marks the write that made the record (dpop-replay.ts: a lost answer). */
  toItem(proof: Pick<DpopProof, 'jkt' | 'jti' | 'acceptedUntil'>, attempt: string): Item {
    return {
      ...dpopProofItem.key(proof),
      attempt,
      [TABLE_SCHEMA.ttlAttribute]: ttlSeconds(proof.acceptedUntil),
    }
  },
}

/**
 * An operator's declaration about a region (`npm run regions`): one item per region, in
 * the global table, so that it replicates to every healthy region. Never expires.
 */
export const regionItem = {
  toItem(declaration: RegionDeclaration): Item {
    return {
      ...itemKey.region(declaration.region),
      region: declaration.region,
      state: declaration.state,
      declared_by: declaration.by,
      declared_at: declaration.at,
    }
  },

  fromItem(item: Item): RegionDeclaration {
    return {
      region: item.region as string,
      // Anything but `lost` is not lost: an unknown state never lets a region adopt.
      state: item.state === 'lost' ? 'lost' : 'restored',
      by: String(item.declared_by ?? ''),
      at: Number(item.declared_at ?? 0),
    }
  },
}
