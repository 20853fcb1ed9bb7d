/**
 * The session item stays under 1 KB, so that a rotation (one UpdateItem of
 * it, sized by the larger of the item before and after) costs one write unit
 * (docs/design.md "Items"; the stack suite measures it: test/stack/capacity.test.ts).
 */
import { describe, expect, it } from 'vitest'
import {
  MAX_STORED_USER_AGENT_BYTES,
  sessionItem,
  utf8Prefix,
} from '../../functions/adapters/dynamodb/items.js'
import type { Session } from '../../functions/core/ports.js'
import {
  hashToken,
  newRefreshToken,
  newSessionId,
  newUserId,
  sealChild,
} from '../../functions/core/refresh-token.js'
import { itemSize } from '../support/item-size.js'

const KB = 1024

/** A session with every optional attribute set, each at the longest this service writes. */
function largestSession(): Session {
  const locator = { sub: newUserId(), sid: newSessionId() }
  const parent = newRefreshToken(locator)
  const child = newRefreshToken(locator)
  // A grace key's reference is 22 characters (functions/adapters/kms-grace-keys.ts).
  const sealedSuccessor = sealChild(parent, locator.sid, child, {
    name: 'A'.repeat(22),
    secret: new Uint8Array(32),
  })
  const now = Date.now()
  return {
    ...locator,
    // The longest client_id parseClients accepts, and a generous scope.
    clientId: 'c'.repeat(64),
    scope: 'openid profile email offline_access api:read api:write',
    status: 'revoked',
    revokedReason: 'logout_everywhere',
    createdAt: now,
    lastUsedAt: now,
    idleExpiresAt: now,
    absoluteExpiresAt: now,
    generation: 123_456,
    currentHash: hashToken(child),
    previousHash: hashToken(parent),
    rotatedAt: now,
    sealedSuccessor,
    // Four bytes a character: the cap is in bytes.
    userAgent: '😀'.repeat(256),
    jkt: 'j'.repeat(43),
    // With regions: among the longest region names.
    home: 'ap-southeast-5',
  }
}

describe('the session item', () => {
  it('stays under 1 KB with every attribute at its longest, so that a rotation costs one write unit', () => {
    const item = sessionItem.toItem(largestSession())
    expect(itemSize(item)).toBeLessThanOrEqual(KB)
  })

  it('stores at most MAX_STORED_USER_AGENT_BYTES of the user agent, cut between characters', () => {
    const item = sessionItem.toItem(largestSession())
    const stored = item.user_agent as string
    expect(Buffer.byteLength(stored)).toBeLessThanOrEqual(MAX_STORED_USER_AGENT_BYTES)
    expect(stored).toBe('😀'.repeat(MAX_STORED_USER_AGENT_BYTES / 4))
    expect(utf8Prefix('aé😀b', 4)).toBe('aé')
    expect(utf8Prefix('short', 160)).toBe('short')
  })

  it('carries no gsi1 keys: a rotation rewrites no index', () => {
    const item = sessionItem.toItem(largestSession())
    expect(item).not.toHaveProperty('gsi1pk')
    expect(item).not.toHaveProperty('gsi1sk')
  })
})
