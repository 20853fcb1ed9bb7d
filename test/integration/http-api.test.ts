import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { User } from '../../functions/core/ports.js'
import {
  type Harness,
  NATIVE,
  PASSWORD,
  SPA,
  SPA_ORIGIN,
  startHarness,
} from '../support/harness.js'
import { capture } from '../support/secrets.js'

let h: Harness
let user: User

beforeAll(async () => {
  h = await startHarness()
  user = await h.addUser({ roles: ['reader'] })
})
afterAll(() => h.close())

const oauthError = (code: string) => ({ error: code, error_description: expect.any(String) })
/** Every refused login or refresh, whatever the reason (RFC 6749 §5.2's wording). */
const INVALID_GRANT = {
  error: 'invalid_grant',
  error_description: 'the credentials or refresh token are invalid, expired or revoked',
}
const claimsOf = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1] as string, 'base64url').toString())

describe('POST /login', () => {
  it('answers a form body with an RFC 6749 token response, no-store, and RFC 9068 claims', async () => {
    const reply = await h.login(user)
    expect(reply.status).toBe(200)
    expect(reply.headers.get('content-type')).toBe('application/json')
    expect(reply.headers.get('cache-control')).toBe('no-store')
    expect(reply.body).toEqual({
      access_token: expect.any(String),
      token_type: 'Bearer',
      expires_in: 900,
      refresh_token: expect.stringMatching(/^rt1_[0-9a-f-]{36}\.[\w-]{22}\.[\w-]{43}$/),
      scope: 'openid api',
    })
    const header = JSON.parse(
      Buffer.from(reply.body.access_token.split('.')[0], 'base64url').toString(),
    )
    expect(header).toEqual({ alg: 'RS256', typ: 'at+jwt', kid: expect.any(String) })
    const claims = claimsOf(reply.body.access_token)
    expect(claims).toEqual({
      iss: h.issuer,
      sub: user.sub,
      aud: NATIVE.audience,
      exp: Math.floor(h.clock.now() / 1000) + 900,
      iat: Math.floor(h.clock.now() / 1000) - 5,
      nbf: Math.floor(h.clock.now() / 1000) - 5,
      jti: expect.any(String),
      client_id: NATIVE.client_id,
      scope: 'openid api',
      sid: expect.any(String),
      roles: ['reader'],
      username: user.username,
    })
    expect(claims.sub).not.toBe(user.username)
  })

  it('accepts a JSON body and a narrower scope', async () => {
    const reply = await h.post(
      '/login',
      { username: user.username, password: PASSWORD, client_id: NATIVE.client_id, scope: 'api' },
      { json: true },
    )
    expect(reply.status).toBe(200)
    expect(reply.body.scope).toBe('api')
  })

  it('answers one invalid_grant for a wrong password, an unknown user and a disabled user', async () => {
    const wrong = await h.login(user, NATIVE.client_id, 'wrong password!')
    const unknown = await h.post('/login', {
      username: 'nobody-here',
      password: PASSWORD,
      client_id: NATIVE.client_id,
    })
    const disabledUser = await h.addUser()
    await h.users.updateUser(disabledUser.sub, { status: 'disabled' })
    const disabled = await h.login(disabledUser)
    for (const reply of [wrong, unknown, disabled]) {
      expect(reply.status).toBe(400)
      expect(reply.body).toEqual(INVALID_GRANT)
      expect(reply.headers.get('cache-control')).toBe('no-store')
    }
    expect(new Set([wrong.text, unknown.text, disabled.text]).size).toBe(1)
  })

  it('answers invalid_client for an unknown client and invalid_request for a missing parameter', async () => {
    const unknown = await h.post('/login', {
      username: user.username,
      password: PASSWORD,
      client_id: 'nope',
    })
    expect(unknown.status).toBe(401)
    expect(unknown.body).toEqual(oauthError('invalid_client'))
    const missing = await h.post('/login', { username: user.username, client_id: NATIVE.client_id })
    expect(missing.status).toBe(400)
    expect(missing.body).toEqual(oauthError('invalid_request'))
  })

  it('answers invalid_scope for a scope the client may not have', async () => {
    const reply = await h.post('/login', {
      username: user.username,
      password: PASSWORD,
      client_id: NATIVE.client_id,
      scope: 'admin',
    })
    expect(reply.status).toBe(400)
    expect(reply.body).toEqual(oauthError('invalid_scope'))
  })
})

describe('request bodies', () => {
  it('refuses a repeated form parameter with invalid_request', async () => {
    const reply = await h.post(
      '/login',
      {},
      { rawBody: `username=a&username=b&password=x&client_id=${NATIVE.client_id}` },
    )
    expect(reply.status).toBe(400)
    expect(reply.body).toEqual(oauthError('invalid_request'))
  })

  it('refuses a JSON body with a repeated key with invalid_request, as a repeated form parameter', async () => {
    const user = await h.addUser()
    const bodies = [
      // Last-wins parsing would check the second password and ignore the first.
      `{"username":"${user.username}","password":"wrong","password":"${PASSWORD}","client_id":"${NATIVE.client_id}"}`,
      // The same name spelled with an escape is the same key.
      `{"username":"${user.username}","password":"${PASSWORD}","pass\\u0077ord":"x","client_id":"${NATIVE.client_id}"}`,
      `{"client_id":"${NATIVE.client_id}","client_id":"${NATIVE.client_id}","username":"${user.username}","password":"${PASSWORD}"}`,
    ]
    for (const rawBody of bodies) {
      const reply = await h.post('/login', {}, { json: true, rawBody })
      expect(reply.status, rawBody).toBe(400)
      expect(reply.body).toEqual({
        error: 'invalid_request',
        error_description: 'a request parameter is repeated',
      })
    }
    // Keys that only look alike, and repeats inside strings, are not repeats.
    const fine = await h.post(
      '/login',
      {},
      {
        json: true,
        rawBody: `{"username":"${user.username}","password":"${PASSWORD}","client_id":"${NATIVE.client_id}","Password":"\\"password\\":"}`,
      },
    )
    expect(fine.status).toBe(200)
  })

  it('refuses a body above 8 KiB with 413', async () => {
    const reply = await h.post('/login', {}, { rawBody: `username=${'a'.repeat(9000)}` })
    expect(reply.status).toBe(413)
    expect(reply.body).toEqual(oauthError('invalid_request'))
  })

  it('refuses other content types with 415', async () => {
    const reply = await h.post(
      '/token',
      {},
      { rawBody: 'x', headers: { 'content-type': 'text/plain' } },
    )
    expect(reply.status).toBe(415)
    expect(reply.body).toEqual(oauthError('invalid_request'))
  })

  it('refuses malformed JSON, non-objects and non-string values with 400 invalid_request', async () => {
    for (const rawBody of ['{', '[]', '"x"', '{"username":1}', 'null']) {
      const reply = await h.post('/login', {}, { rawBody, json: true })
      expect(reply.status, rawBody).toBe(400)
      expect(reply.body).toEqual(oauthError('invalid_request'))
    }
  })

  it('ignores __proto__ and constructor keys instead of failing', async () => {
    const reply = await h.post(
      '/login',
      {},
      {
        rawBody: `__proto__=x&constructor=y&username=${user.username}&password=${encodeURIComponent(PASSWORD)}&client_id=${NATIVE.client_id}`,
      },
    )
    expect(reply.status).toBe(200)
    const json = await h.post(
      '/login',
      {},
      { json: true, rawBody: '{"__proto__":{"admin":"1"},"client_id":"test-native"}' },
    )
    expect(json.status).toBe(400)
  })

  it('adds security headers to answers and errors', async () => {
    const reply = await h.post('/login', {}, { rawBody: '' })
    expect(reply.headers.get('x-content-type-options')).toBe('nosniff')
    expect(reply.headers.get('strict-transport-security')).toContain('max-age')
  })
})

describe('POST /token', () => {
  it('answers unsupported_grant_type for another grant and invalid_request without one', async () => {
    const other = await h.post('/token', { grant_type: 'password', client_id: NATIVE.client_id })
    expect(other.status).toBe(400)
    expect(other.body).toEqual(oauthError('unsupported_grant_type'))
    const none = await h.post('/token', { client_id: NATIVE.client_id })
    expect(none.body).toEqual(oauthError('invalid_request'))
  })

  it("answers invalid_grant for an unknown token and for another client's token, invalid_client for an unknown client", async () => {
    const token = (await h.login(user)).body.refresh_token
    expect((await h.refresh('rt1_nonsense')).body).toEqual(INVALID_GRANT)
    const otherClient = await h.refresh(token, 'test-no-grace')
    expect(otherClient.status).toBe(400)
    expect(otherClient.body).toEqual(INVALID_GRANT)
    const unknownClient = await h.refresh(token, 'nope')
    expect(unknownClient.status).toBe(401)
    expect(unknownClient.body).toEqual(oauthError('invalid_client'))
    // None of those refusals spent the token.
    expect((await h.refresh(token)).status).toBe(200)
  })

  it('never echoes the presented token in an error', async () => {
    const token = (await h.login(user)).body.refresh_token
    const revoked = await h.post('/revoke', { token, client_id: NATIVE.client_id })
    expect(revoked.status).toBe(200)
    const reply = await h.refresh(token)
    expect(reply.status).toBe(400)
    expect(reply.text).not.toContain(token)
  })
})

describe('POST /revoke', () => {
  it('answers 200 {} and ends the session, also for unknown and already revoked tokens', async () => {
    const token = (await h.login(user)).body.refresh_token
    for (const t of [token, token, 'rt1_unknown', 'anything']) {
      const reply = await h.post('/revoke', {
        token: t,
        client_id: NATIVE.client_id,
        token_type_hint: 'refresh_token',
      })
      expect(reply.status).toBe(200)
      expect(reply.body).toEqual({})
      expect(reply.headers.get('cache-control')).toBe('no-store')
    }
    expect((await h.refresh(token)).body).toEqual(INVALID_GRANT)
  })

  it('answers invalid_request without a token and invalid_client for an unknown client', async () => {
    expect((await h.post('/revoke', { client_id: NATIVE.client_id })).body).toEqual(
      oauthError('invalid_request'),
    )
    const reply = await h.post('/revoke', { token: 'x', client_id: 'nope' })
    expect(reply.status).toBe(401)
    expect(reply.body).toEqual(oauthError('invalid_client'))
  })

  it("leaves another client's session alone", async () => {
    const token = (await h.login(user)).body.refresh_token
    expect((await h.post('/revoke', { token, client_id: 'test-no-grace' })).status).toBe(200)
    expect((await h.refresh(token)).status).toBe(200)
  })
})

describe('JWKS and discovery', () => {
  it('publishes the verification keys with a public cache lifetime', async () => {
    const reply = await h.get('/.well-known/jwks.json')
    expect(reply.status).toBe(200)
    expect(reply.headers.get('cache-control')).toBe('public, max-age=300')
    expect(reply.body.keys).toEqual([
      expect.objectContaining({
        kty: 'RSA',
        alg: 'RS256',
        use: 'sig',
        kid: expect.any(String),
        n: expect.any(String),
        e: 'AQAB',
      }),
    ])
    expect(reply.body.keys[0]).not.toHaveProperty('d')
  })

  it('serves the same RFC 8414 metadata at both discovery paths', async () => {
    const oidc = await h.get('/.well-known/openid-configuration')
    const oauth = await h.get('/.well-known/oauth-authorization-server')
    expect(oidc.body).toEqual(oauth.body)
    expect(oidc.body).toMatchObject({
      issuer: h.issuer,
      jwks_uri: `${h.issuer}/.well-known/jwks.json`,
      token_endpoint: `${h.issuer}/token`,
      revocation_endpoint: `${h.issuer}/revoke`,
      grant_types_supported: ['refresh_token'],
      token_endpoint_auth_methods_supported: ['none'],
      response_types_supported: expect.any(Array),
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
    })
  })
})

describe('SPA cookie mode', () => {
  const origin = { origin: SPA_ORIGIN }
  const loginSpa = () =>
    h.post(
      '/login',
      { username: user.username, password: PASSWORD, client_id: SPA.client_id },
      { headers: origin },
    )
  const cookieOf = (setCookie: string) => setCookie.split(';')[0] as string

  it('puts the refresh token in a __Host- cookie (HttpOnly; Secure; SameSite=Strict; Path=/) and not in the body', async () => {
    const reply = await loginSpa()
    expect(reply.status).toBe(200)
    expect(reply.body.refresh_token).toBeUndefined()
    const [cookie] = reply.headers.getSetCookie()
    expect(cookie).toMatch(/^__Host-rt_test-spa=rt1_/)
    for (const attribute of ['HttpOnly', 'Secure', 'SameSite=Strict', 'Path=/'])
      expect(cookie).toContain(attribute)
    expect(cookie).not.toContain('Domain=')
    expect(reply.headers.get('access-control-allow-origin')).toBe(SPA_ORIGIN)
    expect(reply.headers.get('access-control-allow-credentials')).toBe('true')
  })

  it('refreshes from the cookie, rotating it, when the Origin is allowed', async () => {
    const cookie = cookieOf((await loginSpa()).headers.getSetCookie()[0] as string)
    const reply = await h.post(
      '/token',
      { grant_type: 'refresh_token', client_id: SPA.client_id },
      { headers: { ...origin, cookie } },
    )
    expect(reply.status).toBe(200)
    expect(reply.body.refresh_token).toBeUndefined()
    const next = cookieOf(reply.headers.getSetCookie()[0] as string)
    expect(next).not.toBe(cookie)
  })

  it('refuses a refresh or revoke from another origin or with no origin (CSRF defence)', async () => {
    const cookie = cookieOf((await loginSpa()).headers.getSetCookie()[0] as string)
    for (const headers of [{ origin: 'https://evil.example', cookie }, { cookie }] as Record<
      string,
      string
    >[]) {
      const refresh = await h.post(
        '/token',
        { grant_type: 'refresh_token', client_id: SPA.client_id },
        { headers },
      )
      expect(refresh.status).toBe(403)
      expect(refresh.body).toEqual(oauthError('access_denied'))
      expect(refresh.headers.get('access-control-allow-origin')).toBeNull()
      const revoke = await h.post('/revoke', { client_id: SPA.client_id }, { headers })
      expect(revoke.status).toBe(403)
    }
    // The cookie is still good for the real origin.
    const ok = await h.post(
      '/token',
      { grant_type: 'refresh_token', client_id: SPA.client_id },
      { headers: { ...origin, cookie } },
    )
    expect(ok.status).toBe(200)
  })

  it('revokes the session in the cookie and clears the cookie', async () => {
    const cookie = cookieOf((await loginSpa()).headers.getSetCookie()[0] as string)
    const reply = await h.post(
      '/revoke',
      { client_id: SPA.client_id },
      { headers: { ...origin, cookie } },
    )
    expect(reply.status).toBe(200)
    expect(reply.body).toEqual({})
    expect(reply.headers.getSetCookie()[0]).toMatch(/^__Host-rt_test-spa=; .*Max-Age=0/)
    const after = await h.post(
      '/token',
      { grant_type: 'refresh_token', client_id: SPA.client_id },
      { headers: { ...origin, cookie } },
    )
    expect(after.status).toBe(400)
    expect(after.body).toEqual(INVALID_GRANT)
  })

  it('answers a CORS preflight from an allowed origin only', async () => {
    const allowed = await fetch(`${h.url}/token`, {
      method: 'OPTIONS',
      headers: { origin: SPA_ORIGIN, 'access-control-request-method': 'POST' },
    })
    expect(allowed.headers.get('access-control-allow-origin')).toBe(SPA_ORIGIN)
    const denied = await fetch(`${h.url}/token`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    })
    expect(denied.headers.get('access-control-allow-origin')).toBeNull()
  })
})

describe('CORS on refusals', () => {
  it('lets an allowed origin read WWW-Authenticate on a bearer refusal and on an API error', async () => {
    const refused = await h.get('/me', { origin: SPA_ORIGIN })
    expect(refused.status).toBe(401)
    expect(refused.headers.get('www-authenticate')).toBe(
      'Bearer error="invalid_token", DPoP error="invalid_token", algs="ES256 RS256 EdDSA Ed25519"',
    )
    expect(refused.headers.get('access-control-allow-origin')).toBe(SPA_ORIGIN)
    expect(refused.headers.get('access-control-expose-headers')).toMatch(/WWW-Authenticate/i)

    const error = await h.post(
      '/token',
      { grant_type: 'password', client_id: SPA.client_id },
      {
        headers: { origin: SPA_ORIGIN },
      },
    )
    expect(error.status).toBe(400)
    expect(error.headers.get('access-control-expose-headers')).toMatch(/Retry-After/i)
  })
})

describe('invalid_grant', () => {
  it('has one public description whatever the reason; its code goes to the logs only', async () => {
    const before = capture().output.length
    const token = (await h.login(user)).body.refresh_token
    const refused = {
      wrong_password: await h.login(user, NATIVE.client_id, 'wrong password!'),
      unknown_username: await h.post('/login', {
        username: 'nobody-here',
        password: PASSWORD,
        client_id: NATIVE.client_id,
      }),
      malformed_refresh_token: await h.refresh('rt1_nonsense'),
      other_client: await h.refresh(token, 'test-no-grace'),
      cookie_missing: await h.post(
        '/token',
        { grant_type: 'refresh_token', client_id: SPA.client_id },
        { headers: { origin: SPA_ORIGIN } },
      ),
    }
    const logged = capture().output.slice(before).join('')
    for (const [detail, reply] of Object.entries(refused)) {
      expect(reply.status, detail).toBe(400)
      expect(reply.body, detail).toEqual(INVALID_GRANT)
      expect(reply.text, detail).not.toContain(detail)
      expect(logged, detail).toContain(`"detail":"${detail}"`)
    }
    // The login_failed security-event lines carry the same code.
    expect(logged).toContain('"code":"wrong_password"')
    expect(logged).toContain('"code":"unknown_username"')
  })
})
