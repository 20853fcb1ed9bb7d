/**
 * The contract, run through what `cdk synth` produces: the bundles from the
 * cloud assembly with their template environment, behind the template's routes
 * and authorizer, every AWS call checked against the calling function's IAM
 * policy (docs/design.md "Deployed stack").
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { accessTokenHash, jwkThumbprint } from '../../functions/core/dpop.js'
import { parseRefreshToken } from '../../functions/core/refresh-token.js'
import { ROUTES } from '../../functions/routes.js'
import { proofClaims, proofKey, signProof } from '../support/dpop.js'
import { items } from '../support/items.js'
import { recordSecret } from '../support/secrets.js'
import { client, NATIVE_CLIENT, PASSWORD, seedUser } from './api.js'
import { type Assembly, resourcesOf, synthesize } from './assembly.js'
import { Cloud } from './cloud.js'
import { Deployment } from './deployment.js'

/** demo-native's `reuse_grace_seconds`, and the authorizer's default session cache (strict mode). */
const GRACE_SECONDS = 10
const SESSION_CACHE_SECONDS = 5
const AUDIENCE = 'https://api.example.com'
const NEW_PASSWORD = 'the stack suite’s new password'
recordSecret(NEW_PASSWORD)

const configurations = {
  lambda: { stackName: 'TokenService' },
  strict: { stackName: 'TokenServiceStrict', strictRevocation: 'true' },
  jwt: { stackName: 'TokenServiceJwt', authorizer: 'jwt' },
}
let assembly: Assembly<keyof typeof configurations>
const dynamodbLocal = inject('dynamoEndpoint')
const cloud = new Cloud(dynamodbLocal)
const reports: string[] = []

beforeAll(async () => {
  assembly = synthesize(configurations)
  await cloud.start()
}, 240_000)

afterAll(async () => {
  console.log(reports.join('\n\n'))
  await cloud.stop()
  assembly?.remove()
})

/** Deploys one configuration for the tests of the enclosing describe; reports its AWS calls after. */
function deploy(name: keyof typeof configurations, title: string) {
  const state = {} as { deployment: Deployment; api: ReturnType<typeof client>; user: string }
  beforeAll(async () => {
    state.deployment = await Deployment.start(cloud, { functions: assembly.templates[name] })
    state.api = client(state.deployment)
    state.user = await seedUser(state.deployment, dynamodbLocal)
  })
  afterAll(async () => {
    reports.push(state.deployment.report(title))
    await state.deployment.stop()
  })
  return state
}

describe('the synthesized routes', () => {
  it('are exactly the route table (functions/routes.ts), bearer routes behind the authorizer', () => {
    for (const name of Object.keys(configurations) as (keyof typeof configurations)[]) {
      const template = assembly.templates[name]
      const routes = resourcesOf(template, 'AWS::ApiGatewayV2::Route').map(
        ([, route]) => `${route.RouteKey} ${route.AuthorizationType ?? 'NONE'}`,
      )
      const expected = ROUTES.map(
        (route) =>
          `${route.method} ${route.path} ${route.auth === 'bearer' ? (name === 'jwt' ? 'JWT' : 'CUSTOM') : 'NONE'}`,
      )
      expect(routes.sort(), name).toEqual(expected.sort())
    }
  })
})

for (const strict of [false, true]) {
  describe(`the synthesized stack, Lambda authorizer, strict mode ${strict ? 'on' : 'off'}`, () => {
    const stack = deploy(
      strict ? 'strict' : 'lambda',
      `Lambda authorizer, strict ${strict ? 'on' : 'off'}`,
    )
    const issuer = () => `https://${stack.deployment.apiHost}`

    it('logs in: a token response whose access token verifies against the deployed JWKS', async () => {
      const reply = await stack.api.login(stack.user)
      expect(reply.status).toBe(200)
      expect(reply.headers.get('cache-control')).toBe('no-store')
      expect(reply.body).toMatchObject({
        token_type: 'Bearer',
        expires_in: 900,
        refresh_token: expect.stringMatching(/^rt1_/),
      })
      const jwks = createRemoteJWKSet(new URL(`${stack.deployment.url}/.well-known/jwks.json`))
      const { payload, protectedHeader } = await jwtVerify(reply.body.access_token, jwks, {
        issuer: issuer(),
        audience: AUDIENCE,
        typ: 'at+jwt',
        algorithms: ['RS256'],
      })
      expect(protectedHeader.kid).toBeTruthy()
      expect(payload).toMatchObject({
        client_id: NATIVE_CLIENT,
        username: stack.user,
        roles: ['reader'],
      })

      const wrong = await stack.api.login(stack.user, `${PASSWORD}!`)
      expect(wrong.status).toBe(400)
      expect(wrong.body.error).toBe('invalid_grant')
    })

    it('refreshes: a new pair, and the presented refresh token is retired', async () => {
      const first = await stack.api.session(stack.user)
      const second = await stack.api.refresh(first.refresh_token)
      expect(second.status).toBe(200)
      expect(second.body.refresh_token).not.toBe(first.refresh_token)
      expect((await stack.api.me(second.body.access_token)).status).toBe(200)
      expect((await stack.api.refresh(second.body.refresh_token)).status).toBe(200)
    })

    it('replays within the grace window: the same new refresh token again', async () => {
      const first = await stack.api.session(stack.user)
      const rotated = await stack.api.refresh(first.refresh_token)
      const replayed = await stack.api.refresh(first.refresh_token)
      expect(replayed.status).toBe(200)
      expect(replayed.body.refresh_token).toBe(rotated.body.refresh_token)
    })

    it('binds tokens to a DPoP key: login and refresh with proofs, /me under the DPoP scheme only', async () => {
      const key = proofKey('ES256')
      const proof = (path: string, claims: Record<string, unknown> = {}) =>
        signProof(key, proofClaims(stack.deployment.now(), `${issuer()}${path}`, claims))
      const form = { username: stack.user, password: PASSWORD, client_id: NATIVE_CLIENT }
      const login = await stack.api.call('POST', '/login', {
        form,
        headers: { dpop: proof('/login') },
      })
      expect(login.status).toBe(200)
      expect(login.body.token_type).toBe('DPoP')
      const jkt = jwkThumbprint(key.jwk as Parameters<typeof jwkThumbprint>[0])
      const claims = (token: string) =>
        JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString())
      expect(claims(login.body.access_token).cnf).toEqual({ jkt })

      const refresh = (dpop?: string) =>
        stack.api.call('POST', '/token', {
          form: {
            grant_type: 'refresh_token',
            refresh_token: login.body.refresh_token,
            client_id: NATIVE_CLIENT,
          },
          headers: dpop ? { dpop } : {},
        })
      expect((await refresh()).body.error).toBe('invalid_dpop_proof')
      const thief = signProof(
        proofKey('ES256'),
        proofClaims(stack.deployment.now(), `${issuer()}/token`),
      )
      expect((await refresh(thief)).body.error).toBe('invalid_grant')
      const refreshed = await refresh(proof('/token'))
      expect(refreshed.status).toBe(200)
      const access = refreshed.body.access_token as string
      expect(claims(access).cnf).toEqual({ jkt })

      const me = (authorization: string, dpop?: string) =>
        stack.api.call('GET', '/me', { headers: { authorization, ...(dpop && { dpop }) } })
      const once = proof('/me', { htm: 'GET', ath: accessTokenHash(access) })
      expect((await me(`DPoP ${access}`, once)).status).toBe(200)
      // API Gateway caches no answer: the same proof again reaches the authorizer, which refuses it.
      expect((await me(`DPoP ${access}`, once)).status).toBe(403)
      expect((await me(`Bearer ${access}`)).status).toBe(403)
    })

    it('revokes the whole session when a rotated token is reused after the grace window', async () => {
      const first = await stack.api.session(stack.user)
      const rotated = await stack.api.refresh(first.refresh_token)
      stack.deployment.advanceClock((GRACE_SECONDS + 1) * 1000)
      const reused = await stack.api.refresh(first.refresh_token)
      expect(reused.status).toBe(400)
      expect(reused.body.error).toBe('invalid_grant')
      expect((await stack.api.refresh(rotated.body.refresh_token)).body.error).toBe('invalid_grant')
    })

    it(`revokes a session (RFC 7009)${strict ? ', and its access token stops at once' : ''}`, async () => {
      const tokens = await stack.api.session(stack.user)
      const revoked = await stack.api.revoke(tokens.refresh_token)
      expect(revoked.status).toBe(200)
      expect(revoked.body).toEqual({})
      expect((await stack.api.refresh(tokens.refresh_token)).body.error).toBe('invalid_grant')
      expect((await stack.api.me(tokens.access_token)).status).toBe(strict ? 403 : 200)
    })

    it('publishes JWKS and both discovery documents for the template’s issuer', async () => {
      const tokens = await stack.api.session(stack.user)
      const jwks = await stack.api.call('GET', '/.well-known/jwks.json')
      expect(jwks.status).toBe(200)
      expect(jwks.headers.get('cache-control')).toBe('public, max-age=300')
      expect(jwks.body.keys.map((key: { kid: string }) => key.kid)).toEqual([
        decodeProtectedHeader(tokens.access_token).kid,
      ])
      for (const path of [
        '/.well-known/openid-configuration',
        '/.well-known/oauth-authorization-server',
      ]) {
        const discovery = await stack.api.call('GET', path)
        expect(discovery.status, path).toBe(200)
        expect(discovery.body).toMatchObject({
          issuer: issuer(),
          jwks_uri: `${issuer()}/.well-known/jwks.json`,
          token_endpoint: `${issuer()}/token`,
          revocation_endpoint: `${issuer()}/revoke`,
          id_token_signing_alg_values_supported: ['RS256'],
        })
      }
    })

    it('serves /me with the verified claims; 401 without a token (authorizer not called), 403 for a bad one', async () => {
      const tokens = await stack.api.session(stack.user)
      const me = await stack.api.me(tokens.access_token)
      expect(me.status).toBe(200)
      expect(me.body).toMatchObject({
        iss: issuer(),
        aud: AUDIENCE,
        client_id: NATIVE_CLIENT,
        username: stack.user,
        roles: ['reader'],
      })

      const authorizer = stack.deployment.functions.get('authorizer')?.lambda
      const calls = authorizer?.invocations
      const missing = await stack.api.me()
      expect([missing.status, missing.body]).toEqual([401, { message: 'Unauthorized' }])
      expect(authorizer?.invocations).toBe(calls)

      const [header, payload, signature] = tokens.access_token.split('.') as [
        string,
        string,
        string,
      ]
      const forged = `${header}.${payload}.${signature.slice(0, -4)}AAAA`
      const refused = await stack.api.me(forged)
      expect([refused.status, refused.body]).toEqual([403, { message: 'Forbidden' }])
    })

    it('lists the caller’s sessions and ends one of them', async () => {
      const mine = await stack.api.session(stack.user)
      const other = await stack.api.session(stack.user)
      const sid = (token: string) =>
        JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()).sid
      const listed = await stack.api.call('GET', '/sessions', { token: mine.access_token })
      expect(listed.status).toBe(200)
      const sessions = listed.body.sessions as { sid: string; current: boolean }[]
      expect(sessions.find((s) => s.sid === sid(mine.access_token))?.current).toBe(true)
      expect(sessions.find((s) => s.sid === sid(other.access_token))?.current).toBe(false)

      const ended = await stack.api.call('DELETE', `/sessions/${sid(other.access_token)}`, {
        token: mine.access_token,
      })
      expect(ended.status).toBe(204)
      expect((await stack.api.refresh(other.refresh_token)).body.error).toBe('invalid_grant')
      expect((await stack.api.me(other.access_token)).status).toBe(strict ? 403 : 200)
      const unknown = await stack.api.call('DELETE', '/sessions/no-such-session', {
        token: mine.access_token,
      })
      expect(unknown.status).toBe(404)
    })

    it(
      strict
        ? 'logs out everywhere: every refresh token and every access token stop, at once or within the session cache'
        : 'logs out everywhere: every refresh token stops; access tokens live on until they expire',
      async () => {
        const user = await seedUser(stack.deployment, dynamodbLocal)
        const caller = await stack.api.session(user)
        const unseen = await stack.api.session(user)
        expect((await stack.api.me(caller.access_token)).status).toBe(200)
        const logout = await stack.api.call('DELETE', '/sessions', { token: caller.access_token })
        expect(logout.status).toBe(204)
        for (const tokens of [caller, unseen]) {
          expect((await stack.api.refresh(tokens.refresh_token)).body.error).toBe('invalid_grant')
        }
        // A session the authorizer has not seen lately is read afresh: refused at once.
        expect((await stack.api.me(unseen.access_token)).status).toBe(strict ? 403 : 200)
        // The caller's own verdict may be reused for the session cache, no longer.
        stack.deployment.advanceClock(SESSION_CACHE_SECONDS * 1000)
        expect((await stack.api.me(caller.access_token)).status).toBe(strict ? 403 : 200)
      },
    )

    it('puts every security event on the stack’s bus: the table stream, filtered by the mapping, through the forwarder, as their roles allow', async () => {
      const tokens = await stack.api.session(stack.user)
      expect((await stack.api.revoke(tokens.refresh_token)).status).toBe(200)
      expect(await stack.deployment.pollStreams()).toBeGreaterThan(0)
      const entries = stack.deployment.busEntries()
      const details = entries.map((entry) => JSON.parse(entry.detail))
      for (const [index, entry] of entries.entries()) {
        expect(entry).toMatchObject({ source: 'token-service', detailType: details[index].type })
        expect(details[index]).toMatchObject({ specversion: '1.0', source: issuer() })
      }
      const sid = parseRefreshToken(tokens.refresh_token)?.sid
      const { sub } = decodeJwt(tokens.access_token)
      expect(
        details
          .filter((detail) => detail.data.sid === sid)
          .map((detail) => [detail.type, detail.subject])
          .sort(),
      ).toEqual([
        ['login.succeeded', sub],
        ['session.revoked', sub],
      ])
      // Every outbox item of the table reached the bus once, under its own id.
      const dynamodb = new DynamoDBClient({
        endpoint: dynamodbLocal,
        region: 'local',
        credentials: { accessKeyId: 'operator', secretAccessKey: 'operator' },
      })
      const outbox = await items(dynamodb, stack.deployment.tableName).events()
      dynamodb.destroy()
      expect(details.map((detail) => detail.id).sort()).toEqual(outbox.map((e) => e.id).sort())
      // Nothing new: nothing sent twice.
      await stack.deployment.pollStreams()
      expect(stack.deployment.busEntries()).toHaveLength(entries.length)
    })
    it(
      strict
        ? 'changes the password: 204, the calling session lives on, the others end, their access tokens at once'
        : 'changes the password: 204, the calling session lives on, the others end; their access tokens live on until they expire',
      async () => {
        const user = await seedUser(stack.deployment, dynamodbLocal)
        const other = await stack.api.session(user)
        const caller = await stack.api.session(user)
        const changed = await stack.api.call('POST', '/me/password', {
          token: caller.access_token,
          form: { current_password: PASSWORD, new_password: NEW_PASSWORD },
        })
        expect(changed.status).toBe(204)
        expect((await stack.api.refresh(other.refresh_token)).body.error).toBe('invalid_grant')
        expect((await stack.api.me(other.access_token)).status).toBe(strict ? 403 : 200)
        expect((await stack.api.me(caller.access_token)).status).toBe(200)
        expect((await stack.api.refresh(caller.refresh_token)).status).toBe(200)
        expect((await stack.api.login(user)).body.error).toBe('invalid_grant')
        expect((await stack.api.login(user, NEW_PASSWORD)).status).toBe(200)

        const wrong = await stack.api.call('POST', '/me/password', {
          token: caller.access_token,
          form: { current_password: PASSWORD, new_password: `${NEW_PASSWORD}!` },
        })
        expect([wrong.status, wrong.body.error]).toEqual([400, 'invalid_grant'])
      },
    )

    if (!strict) {
      it('keeps a cookie-mode client’s refresh token in a __Host- cookie, both ways', async () => {
        const origin = { origin: 'http://localhost:3000' }
        const login = await stack.api.call('POST', '/login', {
          form: { username: stack.user, password: PASSWORD, client_id: 'demo-spa' },
          headers: origin,
        })
        expect(login.status).toBe(200)
        expect(login.body.refresh_token).toBeUndefined()
        const cookie = login.headers.getSetCookie()[0] ?? ''
        expect(cookie).toMatch(
          /^__Host-rt_demo-spa=rt1_[^;]+; Path=\/; HttpOnly; Secure; SameSite=Strict/,
        )
        const refreshed = await stack.api.call('POST', '/token', {
          form: { grant_type: 'refresh_token', client_id: 'demo-spa' },
          headers: { ...origin, cookie: cookie.split(';')[0] as string },
        })
        expect(refreshed.status).toBe(200)
        expect(refreshed.headers.getSetCookie()[0]).not.toBe(cookie)
      })
    }

    it('makes no AWS call its IAM policy does not allow', () => {
      expect(stack.deployment.denials()).toEqual([])
    })
  })
}

describe('the synthesized stack, native HTTP API JWT authorizer', () => {
  const stack = deploy('jwt', 'native JWT authorizer')

  it('serves /me with the claims API Gateway verified, as strings', async () => {
    const tokens = await stack.api.session(stack.user)
    const me = await stack.api.me(tokens.access_token)
    expect(me.status).toBe(200)
    expect(me.body).toMatchObject({
      iss: `https://${stack.deployment.apiHost}`,
      client_id: NATIVE_CLIENT,
      roles: ['reader'],
    })
  })

  it('changes the password of the caller the native authorizer verified', async () => {
    const user = await seedUser(stack.deployment, dynamodbLocal)
    const other = await stack.api.session(user)
    const caller = await stack.api.session(user)
    const changed = await stack.api.call('POST', '/me/password', {
      token: caller.access_token,
      form: { current_password: PASSWORD, new_password: NEW_PASSWORD },
    })
    expect(changed.status).toBe(204)
    expect((await stack.api.refresh(other.refresh_token)).body.error).toBe('invalid_grant')
    expect((await stack.api.refresh(caller.refresh_token)).status).toBe(200)
  })

  it('answers 401 without a token, and 401 with WWW-Authenticate for a bad one', async () => {
    const tokens = await stack.api.session(stack.user)
    expect((await stack.api.me()).status).toBe(401)
    const refused = await stack.api.me(`${tokens.access_token.slice(0, -4)}AAAA`)
    expect(refused.status).toBe(401)
    expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/)
  })

  it('makes no AWS call its IAM policy does not allow', () => {
    expect(stack.deployment.denials()).toEqual([])
  })
})
