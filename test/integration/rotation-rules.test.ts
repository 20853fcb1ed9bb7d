import { createDecipheriv, hkdfSync } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { User } from '../../functions/core/ports.js'
import { openChild, parseRefreshToken } from '../../functions/core/refresh-token.js'
import { type Harness, NATIVE, NO_GRACE, startHarness } from '../support/harness.js'
import { type Item, items } from '../support/items.js'

let h: Harness
let user: User

beforeAll(async () => {
  h = await startHarness()
  user = await h.addUser({ roles: ['reader'] })
})
afterAll(() => h.close())

async function newSession(client = NATIVE.client_id): Promise<string> {
  const reply = await h.login(user, client)
  expect(reply.status).toBe(200)
  return reply.body.refresh_token
}

async function sessionItem(refreshToken: string) {
  const sid = parseRefreshToken(refreshToken)?.sid as string
  return (await items(h.dynamodb, h.tableName).session(sid)).session as Item
}

describe('rule 1: rotation', () => {
  it('returns a new refresh token on every refresh and retires the presented one', async () => {
    const first = await newSession()
    const second = await h.refresh(first)
    expect(second.status).toBe(200)
    expect(second.body.refresh_token).toMatch(/^rt1_/)
    expect(second.body.refresh_token).not.toBe(first)
    const third = await h.refresh(second.body.refresh_token)
    expect(third.status).toBe(200)
    expect(third.body.refresh_token).not.toBe(second.body.refresh_token)
    const item = await sessionItem(first)
    expect(item.generation).toBe(2)
    expect(item.status).toBe('active')
  })
})

describe('rule 2: grace', () => {
  it('answers a replay of the retired token within grace with the same new refresh token and a fresh access token', async () => {
    const parent = await newSession()
    const first = await h.refresh(parent)
    h.clock.advance(NATIVE.reuse_grace_seconds as number)
    const replay = await h.refresh(parent)
    expect(replay.status).toBe(200)
    expect(replay.body.refresh_token).toBe(first.body.refresh_token)
    expect(replay.body.access_token).not.toBe(first.body.access_token)
    // The replay did not rotate again: the child still works.
    const next = await h.refresh(first.body.refresh_token)
    expect(next.status).toBe(200)
  })

  it('keeps the child only as ciphertext: the stored session holds neither token nor its plain form', async () => {
    const parent = await newSession()
    const child = (await h.refresh(parent)).body.refresh_token as string
    const item = JSON.stringify(await sessionItem(parent))
    expect(item).not.toContain(child)
    expect(item).not.toContain(parent)
    expect(item).not.toContain(child.split('.')[2])
  })

  it('leaves a copy of the table plus the retired token unable to open the child, within the window or after it', async () => {
    const parent = await newSession()
    const child = (await h.refresh(parent)).body.refresh_token as string
    const sid = parseRefreshToken(parent)?.sid as string
    // A reader of the table (a backup) who also holds the retired token (an old request log)
    // tries what the parent and the item allow: the service's own opening without its key,
    // and the parent-only derivation (HKDF of the parent, salt sid) on the seal's last parts.
    const tryOpen = async () => {
      const sealed = String((await sessionItem(parent)).grace_child)
      return [openChild(parent, sid, sealed), openWithParentAlone(parent, sid, sealed)]
    }
    expect(await tryOpen()).toEqual([undefined, undefined])
    h.clock.advance((NATIVE.reuse_grace_seconds as number) + 1)
    expect(await tryOpen()).toEqual([undefined, undefined])
    // Nor does the server open it after the window: the parent is reuse, and ends the session.
    expect((await h.refresh(parent)).status).toBe(400)
    expect((await h.refresh(child)).status).toBe(400)
  })
})

/** AES-256-GCM under HKDF-SHA256(parent, salt = sid): a key that needs nothing but the parent. */
function openWithParentAlone(parent: string, sid: string, sealed: string): string | undefined {
  const [iv, ciphertext, tag] = sealed.split('.').slice(-3) as [string, string, string]
  const key = Buffer.from(
    hkdfSync('sha256', parent, sid, 'rotating-token-service grace child v1', 32),
  )
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'))
    decipher.setAAD(Buffer.from(sid))
    decipher.setAuthTag(Buffer.from(tag, 'base64url'))
    const plain = Buffer.concat([
      decipher.update(Buffer.from(ciphertext, 'base64url')),
      decipher.final(),
    ])
    return plain.toString('utf8')
  } catch {
    return undefined
  }
}

describe('rule 3: reuse', () => {
  it('revokes the whole session when a rotated token is reused after the grace window', async () => {
    const parent = await newSession()
    const child = (await h.refresh(parent)).body.refresh_token
    h.clock.advance((NATIVE.reuse_grace_seconds as number) + 1)
    const reuse = await h.refresh(parent)
    expect(reuse.status).toBe(400)
    expect(reuse.body.error).toBe('invalid_grant')
    // The newest token of the session is dead too.
    const afterwards = await h.refresh(child)
    expect(afterwards.status).toBe(400)
    expect((await sessionItem(parent)).revoked_reason).toBe('reuse')
  })

  it('treats a token two rotations old as reuse even within the grace window', async () => {
    const t0 = await newSession()
    const t1 = (await h.refresh(t0)).body.refresh_token
    const t2 = (await h.refresh(t1)).body.refresh_token
    expect((await h.refresh(t0)).status).toBe(400)
    expect((await h.refresh(t2)).status).toBe(400)
  })

  it('never revokes a session for garbage that merely names it', async () => {
    const token = await newSession()
    const forged = `${token.slice(0, token.lastIndexOf('.') + 1)}${'A'.repeat(43)}`
    const reply = await h.refresh(forged)
    expect(reply.status).toBe(400)
    expect(reply.body.error).toBe('invalid_grant')
    expect((await h.refresh(token)).status).toBe(200)
  })
})

describe('rule 4: concurrency', () => {
  it('turns 20 simultaneous refreshes of one token into exactly one rotation; every success carries the same new token', async () => {
    const token = await newSession()
    const replies = await Promise.all(Array.from({ length: 20 }, () => h.refresh(token)))
    expect(replies.filter((r) => r.status >= 500)).toEqual([])
    const successes = replies.filter((r) => r.status === 200)
    expect(successes.length).toBe(20)
    const children = new Set(successes.map((r) => r.body.refresh_token))
    expect(children.size).toBe(1)
    const item = await sessionItem(token)
    expect(item.generation).toBe(1)
    expect(item.status).toBe('active')
    // The one child is the session's current token.
    expect((await h.refresh([...children][0] as string)).status).toBe(200)
  })

  it('counts a concurrent duplicate as reuse when the grace is 0', async () => {
    const token = await newSession(NO_GRACE.client_id)
    const replies = await Promise.all(
      Array.from({ length: 5 }, () => h.refresh(token, NO_GRACE.client_id)),
    )
    expect(replies.filter((r) => r.status >= 500)).toEqual([])
    expect(replies.some((r) => r.status === 400)).toBe(true)
    const item = await sessionItem(token)
    // Never a second branch: at most one rotation, and the session ended on the duplicate.
    expect(item.generation).toBeLessThanOrEqual(1)
    expect(item.status).toBe('revoked')
  })
})

describe('rule 5: expiry', () => {
  it('refuses a refresh after the idle timeout, whatever DynamoDB TTL has not yet deleted', async () => {
    const token = await newSession()
    h.clock.advance(7 * 24 * 3600)
    const reply = await h.refresh(token)
    expect(reply.status).toBe(400)
    expect(reply.body.error).toBe('invalid_grant')
  })

  it('ends a session at exactly its idle_expires_at: a refresh 1 ms before rotates, one at that instant is refused', async () => {
    const before = await newSession()
    const at = await newSession()
    const idleExpiresAt = (await sessionItem(at)).idle_expires_at as number
    expect((await sessionItem(before)).idle_expires_at).toBe(idleExpiresAt)
    h.clock.advance((idleExpiresAt - 1 - h.clock.now()) / 1000)
    expect((await h.refresh(before)).status).toBe(200)
    h.clock.advance(0.001)
    expect(h.clock.now()).toBe(idleExpiresAt)
    const refused = await h.refresh(at)
    expect(refused.status).toBe(400)
    expect(refused.body.error).toBe('invalid_grant')
  })

  it('refuses a refresh after the absolute lifetime even when the session was used every day', async () => {
    let token = await newSession()
    for (let day = 0; day < 29; day++) {
      h.clock.advance(24 * 3600)
      const reply = await h.refresh(token)
      expect(reply.status).toBe(200)
      token = reply.body.refresh_token
    }
    h.clock.advance(24 * 3600)
    expect((await h.refresh(token)).status).toBe(400)
  })
})

describe('rule 6: fresh roles and status', () => {
  it('shows a role change in the next access token and refuses a disabled user', async () => {
    const someone = await h.addUser({ roles: ['reader'] })
    const login = await h.login(someone)
    await h.users.updateUser(someone.sub, { roles: ['reader', 'editor'] })
    const refreshed = await h.refresh(login.body.refresh_token)
    const claims = JSON.parse(
      Buffer.from(refreshed.body.access_token.split('.')[1], 'base64url').toString(),
    )
    expect(claims.roles).toEqual(['reader', 'editor'])
    await h.users.updateUser(someone.sub, { status: 'disabled' })
    const refused = await h.refresh(refreshed.body.refresh_token)
    expect(refused.status).toBe(400)
    expect(refused.body.error).toBe('invalid_grant')
  })
})
