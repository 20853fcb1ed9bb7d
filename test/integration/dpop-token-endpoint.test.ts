/**
 * DPoP at `/login` and `/token` (RFC 9449 §5, docs/design.md "DPoP"), through
 * the HTTP API of local mode on DynamoDB Local: binding, the refresh rules,
 * single use, nonces, the per-client policy.
 */
import { request as httpRequest } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClientConfig } from '../../functions/core/clients.js'
import { accessTokenHash, jwkThumbprint } from '../../functions/core/dpop.js'
import { hashToken, newRefreshToken, newSessionId } from '../../functions/core/refresh-token.js'
import { type ProofKey, proofClaims, proofKey, signProof } from '../support/dpop.js'
import { DynamoFaults, mentions } from '../support/faults.js'
import {
  type Harness,
  NATIVE,
  PASSWORD,
  type Reply,
  SPA,
  SPA_ORIGIN,
  startHarness,
} from '../support/harness.js'
import { items } from '../support/items.js'
import { recordSecret } from '../support/secrets.js'
import { changes, snapshot } from '../support/store-snapshot.js'
import { decodePart } from '../support/tokens.js'

const REQUIRED: ClientConfig = { ...NATIVE, client_id: 'test-dpop-required', dpop: 'required' }
const NONCE: ClientConfig = { ...NATIVE, client_id: 'test-dpop-nonce', dpop_nonce: true }
const DISABLED: ClientConfig = { ...NATIVE, client_id: 'test-dpop-disabled', dpop: 'disabled' }
const DPOP_SPA: ClientConfig = { ...SPA, client_id: 'test-dpop-spa' }

let h: Harness

beforeAll(async () => {
  h = await startHarness({ clients: [NATIVE, SPA, REQUIRED, NONCE, DISABLED, DPOP_SPA] })
})
afterAll(() => h?.close())

/** A fresh proof of `key` for `POST <issuer><path>` at the harness's time. */
function proof(key: ProofKey, path: string, claims: Record<string, unknown> = {}): string {
  return signProof(key, proofClaims(h.clock.now(), `${h.issuer}${path}`, claims))
}

const thumbprintOf = (key: ProofKey) =>
  jwkThumbprint(key.jwk as Parameters<typeof jwkThumbprint>[0])

function loginWith(
  username: string,
  client: string,
  dpop?: string,
  headers: Record<string, string> = {},
): Promise<Reply> {
  return h.post(
    '/login',
    { username, password: PASSWORD, client_id: client },
    { headers: { ...headers, ...(dpop && { dpop }) } },
  )
}

function refreshWith(refreshToken: string, client: string, dpop?: string): Promise<Reply> {
  recordSecret(refreshToken)
  return h.post(
    '/token',
    { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: client },
    { headers: dpop ? { dpop } : {} },
  )
}

const accessClaims = (reply: Reply) => decodePart(reply.body.access_token as string, 1)

/** A user logged in with the native client and a proof of `key`: the bound session's tokens. */
async function boundLogin(key: ProofKey, client = NATIVE.client_id) {
  const user = await h.addUser()
  const login = await loginWith(user.username, client, proof(key, '/login'))
  expect(login.status).toBe(200)
  return { user, login, sid: accessClaims(login).sid as string }
}

describe('binding at /login', () => {
  it('binds the session and the access token to the key of the proof: token_type DPoP, cnf.jkt', async () => {
    const key = proofKey('ES256')
    const { login, sid } = await boundLogin(key)
    expect(login.body.token_type).toBe('DPoP')
    expect(accessClaims(login).cnf).toEqual({ jkt: thumbprintOf(key) })
    const { session } = await items(h.dynamodb, h.tableName).session(sid)
    expect(session?.jkt).toBe(thumbprintOf(key))
  })

  it('issues bearer tokens to a login without a proof', async () => {
    const user = await h.addUser()
    const login = await loginWith(user.username, NATIVE.client_id)
    expect(login.body.token_type).toBe('Bearer')
    expect(accessClaims(login).cnf).toBeUndefined()
  })

  it('accepts RS256 and Ed25519 proofs as well', async () => {
    for (const alg of ['RS256', 'EdDSA'] as const) {
      const key = proofKey(alg)
      const { login } = await boundLogin(key)
      expect(accessClaims(login).cnf).toEqual({ jkt: thumbprintOf(key) })
    }
  })

  it('refuses a proof made for another endpoint or method, before checking the password', async () => {
    const user = await h.addUser()
    const key = proofKey()
    const before = await snapshot(h.dynamodb, h.tableName)
    const wrongHtu = await loginWith(user.username, NATIVE.client_id, proof(key, '/token'))
    const wrongHtm = await loginWith(
      user.username,
      NATIVE.client_id,
      proof(key, '/login', { htm: 'GET' }),
    )
    for (const reply of [wrongHtu, wrongHtm]) {
      expect(reply.status).toBe(400)
      expect(reply.body.error).toBe('invalid_dpop_proof')
    }
    // Not a failed login: no throttle record, nothing written at all.
    expect(changes(before, await snapshot(h.dynamodb, h.tableName))).toEqual([])
  })

  it('refuses a proof used before, and does not count it as a failed login', async () => {
    const user = await h.addUser()
    const key = proofKey()
    const once = proof(key, '/login')
    expect((await loginWith(user.username, NATIVE.client_id, once)).status).toBe(200)
    const before = await snapshot(h.dynamodb, h.tableName)
    const replay = await loginWith(user.username, NATIVE.client_id, once)
    expect(replay.status).toBe(400)
    expect(replay.body).toEqual({
      error: 'invalid_dpop_proof',
      error_description: 'invalid DPoP proof: proof already used',
    })
    // No failure counted, nothing changed: only the replay reported (dpop.proof_replayed).
    const changed = changes(before, await snapshot(h.dynamodb, h.tableName))
    expect(changed.map((change) => change.key)).toEqual([expect.stringMatching(/^EVENT#/)])
    expect(changed[0]?.after).toMatchObject({ type: 'dpop.proof_replayed', subject: user.sub })
  })

  it('still refuses a replay at exactly its proof’s end (iat + 60 s + 30 s of skew), and one ms later as too old', async () => {
    const user = await h.addUser()
    const key = proofKey()
    const once = proof(key, '/login')
    expect((await loginWith(user.username, NATIVE.client_id, once)).status).toBe(200)
    const iat = decodePart(once, 1).iat as number
    const end = (iat + 60 + 30) * 1000
    h.clock.advance((end - h.clock.now()) / 1000)
    expect(h.clock.now()).toBe(end)
    const atEnd = await loginWith(user.username, NATIVE.client_id, once)
    expect(atEnd.status).toBe(400)
    expect(atEnd.body.error_description).toBe('invalid DPoP proof: proof already used')
    h.clock.advance(0.001)
    const after = await loginWith(user.username, NATIVE.client_id, once)
    expect(after.status).toBe(400)
    expect(after.body.error_description).toBe('invalid DPoP proof: iat is too old')
  })

  it('keeps a proof of one key apart from the same jti under another key', async () => {
    const user = await h.addUser()
    const jti = 'shared-jti'
    const first = await loginWith(
      user.username,
      NATIVE.client_id,
      proof(proofKey(), '/login', { jti }),
    )
    const second = await loginWith(
      user.username,
      NATIVE.client_id,
      proof(proofKey(), '/login', { jti }),
    )
    expect([first.status, second.status]).toEqual([200, 200])
  })
})

describe('refreshing a bound session', () => {
  it('rotates with a proof of the same key, and the new access token stays bound', async () => {
    const key = proofKey()
    const { login } = await boundLogin(key)
    const refreshed = await refreshWith(
      login.body.refresh_token,
      NATIVE.client_id,
      proof(key, '/token'),
    )
    expect(refreshed.status).toBe(200)
    expect(refreshed.body.token_type).toBe('DPoP')
    expect(accessClaims(refreshed).cnf).toEqual({ jkt: thumbprintOf(key) })
    expect(refreshed.body.refresh_token).not.toBe(login.body.refresh_token)
  })

  it('refuses a refresh without a proof, consuming nothing', async () => {
    const key = proofKey()
    const { login, sid } = await boundLogin(key)
    const before = await snapshot(h.dynamodb, h.tableName)
    const bare = await refreshWith(login.body.refresh_token, NATIVE.client_id)
    expect(bare.status).toBe(400)
    expect(bare.body.error).toBe('invalid_dpop_proof')
    expect(changes(before, await snapshot(h.dynamodb, h.tableName))).toEqual([])
    // The same refresh token still rotates, once, with a proof.
    const retry = await refreshWith(
      login.body.refresh_token,
      NATIVE.client_id,
      proof(key, '/token'),
    )
    expect(retry.status).toBe(200)
    const { session } = await items(h.dynamodb, h.tableName).session(sid)
    expect(session).toMatchObject({ status: 'active', generation: 1 })
  })

  it('refuses a proof from another key with invalid_grant, and neither revokes nor rotates', async () => {
    const key = proofKey()
    const { login, sid } = await boundLogin(key)
    const before = await snapshot(h.dynamodb, h.tableName)
    const thief = await refreshWith(
      login.body.refresh_token,
      NATIVE.client_id,
      proof(proofKey(), '/token'),
    )
    expect(thief.status).toBe(400)
    expect(thief.body.error).toBe('invalid_grant')
    // The thief's proof was used (and is kept for its window), the theft reported
    // (dpop.key_mismatch, test/integration/security-events.test.ts); the session is untouched.
    const changed = changes(before, await snapshot(h.dynamodb, h.tableName))
    expect(changed.map((change) => change.key)).toEqual([
      expect.stringMatching(/^DPOP#[\w-]{43}\|JTI#/),
      expect.stringMatching(/^EVENT#/),
    ])
    expect(changed[1]?.after).toMatchObject({ type: 'dpop.key_mismatch', data: { sid } })
    const owner = await refreshWith(
      login.body.refresh_token,
      NATIVE.client_id,
      proof(key, '/token'),
    )
    expect(owner.status).toBe(200)
    const { session } = await items(h.dynamodb, h.tableName).session(sid)
    expect(session).toMatchObject({ status: 'active', generation: 1 })
  })

  it('refuses a replayed proof at /token, and the refresh token it came with stays usable', async () => {
    const key = proofKey()
    const { login } = await boundLogin(key)
    const once = proof(key, '/token')
    const first = await refreshWith(login.body.refresh_token, NATIVE.client_id, once)
    expect(first.status).toBe(200)
    const replay = await refreshWith(first.body.refresh_token, NATIVE.client_id, once)
    expect(replay.status).toBe(400)
    expect(replay.body.error_description).toBe('invalid DPoP proof: proof already used')
    const next = await refreshWith(first.body.refresh_token, NATIVE.client_id, proof(key, '/token'))
    expect(next.status).toBe(200)
  })

  it('answers a grace replay with the right key with the same child, and refuses another key without revoking', async () => {
    const key = proofKey()
    const { login, sid } = await boundLogin(key)
    const parent = login.body.refresh_token as string
    const rotated = await refreshWith(parent, NATIVE.client_id, proof(key, '/token'))
    expect(rotated.status).toBe(200)

    const stranger = await refreshWith(parent, NATIVE.client_id, proof(proofKey(), '/token'))
    expect(stranger.status).toBe(400)
    expect(stranger.body.error).toBe('invalid_grant')
    const bare = await refreshWith(parent, NATIVE.client_id)
    expect(bare.body.error).toBe('invalid_dpop_proof')

    const replay = await refreshWith(parent, NATIVE.client_id, proof(key, '/token'))
    expect(replay.status).toBe(200)
    expect(replay.body.refresh_token).toBe(rotated.body.refresh_token)
    expect(replay.body.token_type).toBe('DPoP')
    expect(accessClaims(replay).cnf).toEqual({ jkt: thumbprintOf(key) })
    const { session } = await items(h.dynamodb, h.tableName).session(sid)
    expect(session).toMatchObject({ status: 'active', generation: 1 })
  })

  it('refuses a retired token with another key after the grace window without revoking the session', async () => {
    const key = proofKey()
    const { login, sid } = await boundLogin(key)
    const parent = login.body.refresh_token as string
    const rotated = await refreshWith(parent, NATIVE.client_id, proof(key, '/token'))
    h.clock.advance((NATIVE.reuse_grace_seconds ?? 10) + 1)
    const stranger = await refreshWith(parent, NATIVE.client_id, proof(proofKey(), '/token'))
    expect(stranger.body.error).toBe('invalid_grant')
    expect((await items(h.dynamodb, h.tableName).session(sid)).session?.status).toBe('active')
    // The holder of the key replaying it is reuse, as without DPoP.
    const reuse = await refreshWith(parent, NATIVE.client_id, proof(key, '/token'))
    expect(reuse.body.error).toBe('invalid_grant')
    expect((await items(h.dynamodb, h.tableName).session(sid)).session?.status).toBe('revoked')
    expect(rotated.status).toBe(200)
  })

  it('keeps an unbound session unbound when a refresh carries a proof', async () => {
    const user = await h.addUser()
    const login = await loginWith(user.username, NATIVE.client_id)
    const refreshed = await refreshWith(
      login.body.refresh_token,
      NATIVE.client_id,
      proof(proofKey(), '/token'),
    )
    expect(refreshed.status).toBe(200)
    expect(refreshed.body.token_type).toBe('Bearer')
    expect(accessClaims(refreshed).cnf).toBeUndefined()
  })
})

describe('nonces (dpop_nonce)', () => {
  it('challenges a proof without a nonce at /token and leaves the refresh token unconsumed', async () => {
    const key = proofKey()
    const user = await h.addUser()
    const challenge = await loginWith(user.username, NONCE.client_id, proof(key, '/login'))
    expect(challenge.status).toBe(400)
    expect(challenge.body.error).toBe('use_dpop_nonce')
    const nonce = challenge.headers.get('dpop-nonce') as string
    expect(nonce).toMatch(/^[\w-]{22}$/)
    const login = await loginWith(user.username, NONCE.client_id, proof(key, '/login', { nonce }))
    expect(login.status).toBe(200)
    expect(login.headers.get('dpop-nonce')).toBe(nonce)
    const sid = accessClaims(login).sid as string

    // A nonce from a slot long gone: challenged again, nothing read or written.
    const before = await snapshot(h.dynamodb, h.tableName)
    h.clock.advance(3600)
    const stale = await refreshWith(
      login.body.refresh_token,
      NONCE.client_id,
      proof(key, '/token', { nonce }),
    )
    expect(stale.status).toBe(400)
    expect(stale.body.error).toBe('use_dpop_nonce')
    expect(changes(before, await snapshot(h.dynamodb, h.tableName))).toEqual([])
    const fresh = stale.headers.get('dpop-nonce') as string
    expect(fresh).not.toBe(nonce)

    const refreshed = await refreshWith(
      login.body.refresh_token,
      NONCE.client_id,
      proof(key, '/token', { nonce: fresh }),
    )
    expect(refreshed.status).toBe(200)
    expect(refreshed.headers.get('dpop-nonce')).toBe(fresh)
    const { session } = await items(h.dynamodb, h.tableName).session(sid)
    expect(session).toMatchObject({ status: 'active', generation: 1 })
  })

  it('does not count a nonce challenge at /login as a failed login', async () => {
    const user = await h.addUser()
    const key = proofKey()
    const before = await snapshot(h.dynamodb, h.tableName)
    for (let i = 0; i < 5; i++) {
      const reply = await loginWith(user.username, NONCE.client_id, proof(key, '/login'))
      expect(reply.body.error).toBe('use_dpop_nonce')
    }
    expect(changes(before, await snapshot(h.dynamodb, h.tableName))).toEqual([])
  })

  it('asks no nonce of clients without dpop_nonce', async () => {
    const user = await h.addUser()
    const reply = await loginWith(user.username, NATIVE.client_id, proof(proofKey(), '/login'))
    expect(reply.status).toBe(200)
    expect(reply.headers.get('dpop-nonce')).toBeNull()
  })
})

describe('the client policy (dpop)', () => {
  it('refuses a request without a proof from a client that requires DPoP, before anything else', async () => {
    const user = await h.addUser()
    const before = await snapshot(h.dynamodb, h.tableName)
    const bare = await loginWith(user.username, REQUIRED.client_id)
    expect(bare.status).toBe(400)
    expect(bare.body.error).toBe('invalid_dpop_proof')
    expect(changes(before, await snapshot(h.dynamodb, h.tableName))).toEqual([])

    const key = proofKey()
    const login = await loginWith(user.username, REQUIRED.client_id, proof(key, '/login'))
    expect(login.body.token_type).toBe('DPoP')
    const refresh = await refreshWith(login.body.refresh_token, REQUIRED.client_id)
    expect(refresh.body.error).toBe('invalid_dpop_proof')
  })

  it('ignores the DPoP header of a client with DPoP disabled: bearer tokens', async () => {
    const user = await h.addUser()
    const login = await loginWith(user.username, DISABLED.client_id, 'not even a proof')
    expect(login.status).toBe(200)
    expect(login.body.token_type).toBe('Bearer')
    expect(accessClaims(login).cnf).toBeUndefined()
  })
})

describe('cookie mode with DPoP', () => {
  it('needs both the cookie (with its origin) and the proof of the bound key', async () => {
    const user = await h.addUser()
    const key = proofKey()
    const origin = { origin: SPA_ORIGIN }
    const login = await loginWith(user.username, DPOP_SPA.client_id, proof(key, '/login'), origin)
    expect(login.status).toBe(200)
    expect(login.body.token_type).toBe('DPoP')
    expect(login.body.refresh_token).toBeUndefined()
    const cookie = (login.headers.getSetCookie()[0] as string).split(';')[0] as string

    const send = (dpop?: string) =>
      h.post(
        '/token',
        { grant_type: 'refresh_token', client_id: DPOP_SPA.client_id },
        { headers: { ...origin, cookie, ...(dpop && { dpop }) } },
      )
    const bare = await send()
    expect(bare.body.error).toBe('invalid_dpop_proof')
    // Not a dead session: the cookie is kept.
    expect(bare.headers.getSetCookie()).toEqual([])
    const refreshed = await send(proof(key, '/token'))
    expect(refreshed.status).toBe(200)
    expect(refreshed.body.token_type).toBe('DPoP')
  })
})

describe('discovery and CORS', () => {
  it('lists the proof algorithms in dpop_signing_alg_values_supported', async () => {
    const metadata = await h.get('/.well-known/oauth-authorization-server')
    expect(metadata.body.dpop_signing_alg_values_supported).toEqual(
      expect.arrayContaining(['ES256', 'RS256', 'EdDSA']),
    )
  })

  it('lets a browser send the DPoP header and read DPoP-Nonce', async () => {
    const preflight = await h.send('/token', {
      method: 'OPTIONS',
      headers: {
        origin: SPA_ORIGIN,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type, dpop',
      },
    })
    expect(preflight.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('dpop')
    const user = await h.addUser()
    const challenge = await loginWith(user.username, NONCE.client_id, proof(proofKey(), '/login'), {
      origin: SPA_ORIGIN,
    })
    expect(challenge.headers.get('access-control-expose-headers')).toContain('DPoP-Nonce')
  })
})

describe('a client that came to require DPoP', () => {
  it('cannot refresh a session started before, unbound', async () => {
    const user = await h.addUser()
    // A session as a login without a proof left it, before the client was set to `required`.
    const sid = newSessionId()
    const refreshToken = newRefreshToken({ sub: user.sub, sid })
    recordSecret(refreshToken, hashToken(refreshToken))
    const now = h.clock.now()
    const created = await h.sessions.createSession(
      {
        sid,
        sub: user.sub,
        clientId: REQUIRED.client_id,
        scope: 'openid',
        status: 'active',
        createdAt: now,
        lastUsedAt: now,
        idleExpiresAt: now + 3_600_000,
        absoluteExpiresAt: now + 7_200_000,
        generation: 0,
        currentHash: hashToken(refreshToken),
      },
      { sub: user.sub, passwordHash: user.passwordHash },
    )
    expect(created.created).toBe(true)
    const refused = await refreshWith(refreshToken, REQUIRED.client_id, proof(proofKey(), '/token'))
    expect(refused.status).toBe(400)
    expect(refused.body.error).toBe('invalid_grant')
    expect((await items(h.dynamodb, h.tableName).session(sid)).session).toMatchObject({
      status: 'active',
      generation: 0,
    })
  })
})

describe('faults on the proof record', () => {
  const faults = new DynamoFaults()
  let f: Harness

  beforeAll(async () => {
    f = await startHarness({ dynamodb: (client) => faults.install(client) })
  })
  afterAll(async () => {
    await f?.close()
    await faults.close()
  })

  const isProofRecord = mentions('DPOP#')

  it('answers 503 when the proof cannot be recorded, and the refresh token stays usable', async () => {
    const key = proofKey()
    const user = await f.addUser()
    const login = await f.post(
      '/login',
      { username: user.username, password: PASSWORD, client_id: NATIVE.client_id },
      { headers: { dpop: signProof(key, proofClaims(f.clock.now(), `${f.issuer}/login`)) } },
    )
    expect(login.status).toBe(200)
    const refresh = (dpop: string) =>
      f.post(
        '/token',
        {
          grant_type: 'refresh_token',
          refresh_token: login.body.refresh_token,
          client_id: NATIVE.client_id,
        },
        { headers: { dpop } },
      )
    const tokenProof = () => signProof(key, proofClaims(f.clock.now(), `${f.issuer}/token`))
    faults.arm({ command: 'PutItem', fault: 'InternalServerError', match: isProofRecord })
    const failed = await refresh(tokenProof())
    faults.clear()
    expect(failed.status).toBe(503)
    expect(failed.body.error).toBe('temporarily_unavailable')
    const retried = await refresh(tokenProof())
    expect(retried.status).toBe(200)
    expect(retried.body.token_type).toBe('DPoP')
  })

  it('takes a record whose answer was lost for the first use it was, not for a replay', async () => {
    const user = await f.addUser()
    faults.arm({
      command: 'PutItem',
      fault: 'InternalServerError',
      attempts: 'first',
      when: 'after',
      match: isProofRecord,
    })
    const login = await f.post(
      '/login',
      { username: user.username, password: PASSWORD, client_id: NATIVE.client_id },
      { headers: { dpop: signProof(proofKey(), proofClaims(f.clock.now(), `${f.issuer}/login`)) } },
    )
    expect(faults.fired).toHaveLength(1)
    faults.clear()
    expect(login.status).toBe(200)
    expect(login.body.token_type).toBe('DPoP')
  })
})

describe('bound access tokens at the protected routes (the authorizer, as local mode runs it)', () => {
  /** A proof of `key` for `method <issuer><path>` that goes with `accessToken`. */
  const resourceProof = (key: ProofKey, accessToken: string, path = '/me', method = 'GET') =>
    signProof(
      key,
      proofClaims(h.clock.now(), `${h.issuer}${path}`, {
        htm: method,
        ath: accessTokenHash(accessToken),
      }),
    )

  it('serves a bound token under the DPoP scheme with a proof of its key for this request', async () => {
    const key = proofKey()
    const { login, user } = await boundLogin(key)
    const access = login.body.access_token as string
    const me = await h.get('/me', {
      authorization: `DPoP ${access}`,
      dpop: resourceProof(key, access),
    })
    expect(me.status).toBe(200)
    expect(me.body.sub).toBe(user.sub)
    const sessions = await h.get('/sessions', {
      authorization: `DPoP ${access}`,
      dpop: resourceProof(key, access, '/sessions'),
    })
    expect(sessions.status).toBe(200)
  })

  it('answers 401 with both challenges, DPoP naming its algorithms, to a downgrade, a missing proof, a replay and another key', async () => {
    const key = proofKey()
    const { login } = await boundLogin(key)
    const access = login.body.access_token as string
    const once = resourceProof(key, access)
    expect((await h.get('/me', { authorization: `DPoP ${access}`, dpop: once })).status).toBe(200)
    const refusals = [
      await h.get('/me', { authorization: `Bearer ${access}` }),
      await h.get('/me', { authorization: `Bearer ${access}`, dpop: resourceProof(key, access) }),
      await h.get('/me', { authorization: `DPoP ${access}` }),
      await h.get('/me', { authorization: `DPoP ${access}`, dpop: once }),
      await h.get('/me', {
        authorization: `DPoP ${access}`,
        dpop: resourceProof(proofKey(), access),
      }),
      await h.get('/me', {
        authorization: `DPoP ${access}`,
        dpop: resourceProof(key, access, '/sessions'),
      }),
    ]
    for (const reply of refusals) {
      expect(reply.status).toBe(401)
      expect(reply.body.error).toBe('invalid_token')
      expect(reply.headers.get('www-authenticate')).toBe(
        'Bearer error="invalid_token", DPoP error="invalid_token", algs="ES256 RS256 EdDSA Ed25519"',
      )
    }
  })

  it('serves a DPoP client’s token refreshed later, bound to the same key', async () => {
    const key = proofKey()
    const { login } = await boundLogin(key)
    const refreshed = await refreshWith(
      login.body.refresh_token,
      NATIVE.client_id,
      proof(key, '/token'),
    )
    const access = refreshed.body.access_token as string
    const me = await h.get('/me', {
      authorization: `DPoP ${access}`,
      dpop: resourceProof(key, access),
    })
    expect(me.status).toBe(200)
  })
})

describe('htu in local mode (issue 16, finding 6)', () => {
  /** A request sent with its own `Host` header (fetch cannot set one). */
  function withHost(
    host: string,
    path: string,
    headers: Record<string, string>,
    body?: string,
  ): Promise<{ status: number; body: { error?: string; error_description?: string } }> {
    const target = new URL(h.issuer)
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: target.hostname,
          port: target.port,
          path,
          method: body === undefined ? 'GET' : 'POST',
          headers: {
            host,
            ...headers,
            ...(body !== undefined && { 'content-type': 'application/x-www-form-urlencoded' }),
          },
        },
        (res) => {
          let text = ''
          res.on('data', (chunk) => {
            text += chunk
          })
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }))
        },
      )
      req.on('error', reject)
      req.end(body)
    })
  }

  it('builds htu from the issuer’s scheme and host, as API Gateway does, whatever the Host header says', async () => {
    const user = await h.addUser()
    const key = proofKey()
    const form = new URLSearchParams({
      username: user.username,
      password: PASSWORD,
      client_id: NATIVE.client_id,
    }).toString()
    const forged = signProof(key, proofClaims(h.clock.now(), 'http://evil.example/login'))
    const refused = await withHost('evil.example', '/login', { dpop: forged }, form)
    expect(refused.status).toBe(400)
    expect(refused.body.error).toBe('invalid_dpop_proof')
    expect(refused.body.error_description).toMatch(/htu/)
    // A proof for the issuer's own URL is the one that fits, with any Host header.
    const login = await withHost('evil.example', '/login', { dpop: proof(key, '/login') }, form)
    expect(login.status).toBe(200)
  })

  it('checks htu at the protected routes the same way', async () => {
    const key = proofKey()
    const { login } = await boundLogin(key)
    const access = login.body.access_token as string
    const resource = (uri: string) =>
      signProof(key, proofClaims(h.clock.now(), uri, { htm: 'GET', ath: accessTokenHash(access) }))
    const auth = { authorization: `DPoP ${access}` }
    const forged = await withHost('evil.example', '/me', {
      ...auth,
      dpop: resource('http://evil.example/me'),
    })
    expect(forged.status).toBe(401)
    const own = await withHost('evil.example', '/me', { ...auth, dpop: resource(`${h.issuer}/me`) })
    expect(own.status).toBe(200)
  })
})
