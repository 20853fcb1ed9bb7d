/**
 * Sessions written with the layout before issue 17 keep working until they
 * expire (docs/operations.md "Upgrading to the issue 17 layout"): indexed in
 * gsi1 rather than listed by a pointer, a record for every token issued
 * (login's included), and a v2 grace seal that names the KMS-wrapped data key
 * itself. The items here are written exactly as that code wrote them; the
 * requests go through today's code, on DynamoDB Local.
 */
import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto'
import { GenerateDataKeyCommand } from '@aws-sdk/client-kms'
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { User } from '../../functions/core/ports.js'
import {
  hashToken,
  newRefreshToken,
  newSessionId,
  parseRefreshToken,
} from '../../functions/core/refresh-token.js'
import { FakeKms, GRACE_KEY_ALIAS } from '../support/fake-kms.js'
import { addCheapUser, bearer, type Harness, NATIVE, startHarness } from '../support/harness.js'
import { items } from '../support/items.js'
import { recordSecret } from '../support/secrets.js'

let h: Harness
const kms = new FakeKms()
const DAY = 86_400_000

beforeAll(async () => {
  h = await startHarness({ env: { SIGNING_KEY_ID: 'alias/rsa-active' }, kms: kms.client })
})
afterAll(() => h.close())

const put = (item: Record<string, unknown>) =>
  DynamoDBDocumentClient.from(h.dynamodb).send(
    new PutCommand({ TableName: h.tableName, Item: item }),
  )

/** A v2 seal, as the token function sealed before issue 17: the whole child, the wrapped key as its name. */
async function v2Seal(parent: string, sid: string, child: string): Promise<string> {
  const { Plaintext, CiphertextBlob } = await kms.client.send(
    new GenerateDataKeyCommand({
      KeyId: GRACE_KEY_ALIAS,
      KeySpec: 'AES_256',
      EncryptionContext: { purpose: 'rotating-token-service grace child' },
    }),
  )
  const key = hkdfSync(
    'sha256',
    parent,
    Plaintext as Uint8Array,
    `rotating-token-service grace child v2 ${sid}`,
    32,
  )
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(key), iv)
  cipher.setAAD(Buffer.from(sid))
  const ciphertext = Buffer.concat([cipher.update(child, 'utf8'), cipher.final()])
  const name = Buffer.from(CiphertextBlob as Uint8Array).toString('base64url')
  return [
    'v2',
    name,
    ...[iv, ciphertext, cipher.getAuthTag()].map((p) => p.toString('base64url')),
  ].join('.')
}

/**
 * A session as login and one rotation wrote it before issue 17: in gsi1 under its user,
 * a record for its first token and for the child, the child sealed v2.
 */
async function legacySession(user: User, rotatedAgoMs: number) {
  const now = h.clock.now()
  const sid = newSessionId()
  const locator = { sub: user.sub, sid }
  const first = newRefreshToken(locator)
  const child = newRefreshToken(locator)
  recordSecret(first, child)
  const createdAt = now - DAY
  const absolute = createdAt + 30 * DAY
  const rotatedAt = now - rotatedAgoMs
  await put({
    pk: `SESSION#${sid}`,
    sk: 'SESSION',
    gsi1pk: `USER#${user.sub}`,
    gsi1sk: `SESSION#${String(createdAt).padStart(15, '0')}#${sid}`,
    sid,
    sub: user.sub,
    client_id: NATIVE.client_id,
    scope: 'openid api',
    status: 'active',
    created_at: createdAt,
    last_used_at: rotatedAt,
    idle_expires_at: rotatedAt + 7 * DAY,
    absolute_expires_at: absolute,
    generation: 1,
    current_hash: hashToken(child),
    previous_hash: hashToken(first),
    rotated_at: rotatedAt,
    grace_child: await v2Seal(first, sid, child),
    user_agent: 'legacy-device/1.0',
    expires_at: Math.ceil((rotatedAt + 7 * DAY) / 1000),
  })
  for (const [token, generation, issuedAt] of [
    [first, 0, createdAt],
    [child, 1, rotatedAt],
  ] as const) {
    await put({
      pk: `SESSION#${sid}`,
      sk: `TOKEN#${hashToken(token)}`,
      generation,
      issued_at: issuedAt,
      expires_at: Math.ceil(absolute / 1000),
    })
  }
  return { sid, first, child }
}

describe('a session written before issue 17', () => {
  let user: User
  beforeAll(async () => {
    user = await addCheapUser(h, 'legacy')
  })

  it('refreshes: its newest token rotates, and the child rotates again', async () => {
    const { sid, child } = await legacySession(user, 60_000)
    const next = await h.refresh(child)
    expect(next.status).toBe(200)
    expect(parseRefreshToken(next.body.refresh_token)?.sid).toBe(sid)
    expect((await h.refresh(next.body.refresh_token)).status).toBe(200)
  })

  it('replays within grace from its v2 seal: the same child, byte for byte', async () => {
    const { first, child } = await legacySession(user, 2_000)
    const replayed = await h.refresh(first)
    expect(replayed.status).toBe(200)
    expect(replayed.body.refresh_token).toBe(child)
  })

  it('detects the reuse of its first token after two rotations under today’s code, from its old record', async () => {
    const { sid, first, child } = await legacySession(user, 60_000)
    const second = await h.refresh(child)
    const third = await h.refresh(second.body.refresh_token)
    expect(third.status).toBe(200)
    h.clock.advance((NATIVE.reuse_grace_seconds as number) + 1)
    expect((await h.refresh(first)).body.error).toBe('invalid_grant')
    const { session } = await items(h.dynamodb, h.tableName).session(sid)
    expect(session).toMatchObject({ status: 'revoked', revoked_reason: 'reuse' })
    expect((await h.refresh(third.body.refresh_token)).body.error).toBe('invalid_grant')
  })

  it('is listed by GET /sessions (through gsi1) next to a session written today, and ends on request', async () => {
    const { sid } = await legacySession(user, 60_000)
    const today = await h.login(user)
    expect(today.status).toBe(200)
    const listed = await h.get('/sessions', bearer(today.body.access_token))
    const sids = (listed.body.sessions as { sid: string }[]).map((s) => s.sid)
    expect(sids).toContain(sid)
    expect(sids).toContain(parseRefreshToken(today.body.refresh_token)?.sid)
    const ended = await h.del(`/sessions/${sid}`, bearer(today.body.access_token))
    expect(ended.status).toBe(204)
  })

  it('is revoked by its refresh token (RFC 7009), and its tokens stop', async () => {
    const { child } = await legacySession(user, 60_000)
    expect((await h.post('/revoke', { token: child, client_id: NATIVE.client_id })).status).toBe(
      200,
    )
    expect((await h.refresh(child)).body.error).toBe('invalid_grant')
  })

  it('ends with a logout everywhere, listed or indexed', async () => {
    const someone = await addCheapUser(h, 'legacy-all')
    const old = await legacySession(someone, 60_000)
    const today = await h.login(someone)
    h.clock.advance(1)
    expect((await h.del('/sessions', bearer(today.body.access_token))).status).toBe(204)
    const { session } = await items(h.dynamodb, h.tableName).session(old.sid)
    expect(session?.status).toBe('revoked')
    expect((await h.refresh(old.child)).body.error).toBe('invalid_grant')
  })
})

describe('a failed-login record written before issue 17 (in gsi1)', () => {
  it('counts on, and leaves the index at its next write', async () => {
    const user = await addCheapUser(h, 'legacy-throttle')
    const key = { pk: `USERNAME#${user.username}`, sk: 'THROTTLE' }
    await put({
      ...key,
      gsi1pk: `USERNAME#${user.username}`,
      gsi1sk: 'THROTTLE',
      failures: 1,
      last_failed_at: h.clock.now(),
      expires_at: Math.ceil((h.clock.now() + DAY) / 1000),
    })
    expect((await h.login(user, NATIVE.client_id, 'a wrong password')).status).toBe(400)
    const { Item } = await DynamoDBDocumentClient.from(h.dynamodb).send(
      new GetCommand({ TableName: h.tableName, Key: key, ConsistentRead: true }),
    )
    expect(Item).toMatchObject({ failures: 2 })
    expect(Item).not.toHaveProperty('gsi1pk')
    expect(Item).not.toHaveProperty('gsi1sk')
  })
})
