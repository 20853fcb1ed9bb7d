/**
 * Third-party DPoP clients against local mode (docs/design.md "DPoP"):
 * oauth4webapi with its `DPoP()` handle, and openid-client v6 (built on it)
 * as it comes. Both sign proofs with WebCrypto keys of their own making, so
 * the thumbprints, the `htu` and the nonce flow are checked against an
 * implementation that is not ours.
 *
 * Our `/login` is no OAuth grant: the test logs in as an app would, signing
 * that one proof with jose and the client's key pair; refresh, revocation
 * and the protected route are the libraries' own requests.
 */
import { exportJWK, SignJWT } from 'jose'
import * as oauth from 'oauth4webapi'
import * as client from 'openid-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClientConfig } from '../../functions/core/clients.js'
import { hashToken } from '../../functions/core/refresh-token.js'
import { FakeClock } from '../support/clock.js'
import { type Harness, NATIVE, PASSWORD, startHarness } from '../support/harness.js'
import { recordSecret } from '../support/secrets.js'
import { decodePart } from '../support/tokens.js'

const NONCE: ClientConfig = { ...NATIVE, client_id: 'test-dpop-nonce', dpop_nonce: true }

// The libraries date their proofs by the real clock: so does the service here.
let h: Harness
let as: oauth.AuthorizationServer

beforeAll(async () => {
  h = await startHarness({ clients: [NATIVE, NONCE], clock: new FakeClock(Date.now()) })
  const issuer = new URL(h.issuer)
  as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, {
      algorithm: 'oauth2',
      [oauth.allowInsecureRequests]: true,
    }),
  )
})
afterAll(() => h?.close())

/** Tokens that reach the test outside the harness's own requests: the log scan knows them. */
function remember(...tokens: (string | undefined)[]): void {
  for (const token of tokens) if (token) recordSecret(token, hashToken(token))
}

/**
 * `POST /login` with a DPoP proof signed by `keyPair`, as an app does it,
 * answering one nonce challenge.
 */
async function login(
  clientId: string,
  keyPair: oauth.CryptoKeyPair,
  alg = 'ES256',
): Promise<Record<string, unknown>> {
  const user = await h.addUser()
  const jwk = await exportJWK(keyPair.publicKey)
  const attempt = async (nonce?: string) => {
    const proof = await new SignJWT({
      htm: 'POST',
      htu: `${h.issuer}/login`,
      jti: crypto.randomUUID(),
      ...(nonce && { nonce }),
    })
      .setProtectedHeader({ alg, typ: 'dpop+jwt', jwk })
      .setIssuedAt()
      .sign(keyPair.privateKey)
    return h.post(
      '/login',
      { username: user.username, password: PASSWORD, client_id: clientId },
      { headers: { dpop: proof } },
    )
  }
  let reply = await attempt()
  if (reply.body?.error === 'use_dpop_nonce') {
    reply = await attempt(reply.headers.get('dpop-nonce') as string)
  }
  expect(reply.status).toBe(200)
  return reply.body
}

const insecure = { [oauth.allowInsecureRequests]: true } as const

describe('oauth4webapi with its DPoP() handle', () => {
  it('refreshes a bound session, calls the protected route with DPoP, and revokes', async () => {
    const app: oauth.Client = { client_id: NATIVE.client_id, token_endpoint_auth_method: 'none' }
    const keyPair = await oauth.generateKeyPair('ES256')
    const dpop = oauth.DPoP(app, keyPair)
    const session = await login(app.client_id, keyPair)
    expect(session.token_type).toBe('DPoP')
    const jkt = await dpop.calculateThumbprint()
    expect(decodePart(session.access_token as string, 1).cnf).toEqual({ jkt })

    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      app,
      await oauth.refreshTokenGrantRequest(as, app, oauth.None(), session.refresh_token as string, {
        DPoP: dpop,
        ...insecure,
      }),
    )
    remember(refreshed.access_token, refreshed.refresh_token)
    expect(refreshed.token_type).toBe('dpop')
    expect(decodePart(refreshed.access_token, 1).cnf).toEqual({ jkt })
    expect(refreshed.refresh_token).not.toBe(session.refresh_token)

    const me = await oauth.protectedResourceRequest(
      refreshed.access_token,
      'GET',
      new URL(`${h.issuer}/me`),
      new Headers(),
      null,
      { DPoP: dpop, ...insecure },
    )
    expect(me.status).toBe(200)
    expect(((await me.json()) as { cnf_jkt?: string; sub: string }).sub).toEqual(expect.any(String))

    await oauth.processRevocationResponse(
      await oauth.revocationRequest(
        as,
        app,
        oauth.None(),
        refreshed.refresh_token as string,
        insecure,
      ),
    )
    const after = await oauth
      .refreshTokenGrantRequest(as, app, oauth.None(), refreshed.refresh_token as string, {
        DPoP: dpop,
        ...insecure,
      })
      .then((response) => oauth.processRefreshTokenResponse(as, app, response))
      .catch((error: unknown) => error)
    expect(after).toBeInstanceOf(oauth.ResponseBodyError)
    expect((after as oauth.ResponseBodyError).error).toBe('invalid_grant')
  })

  it('follows a use_dpop_nonce challenge with its handle, and the refresh token survives it', async () => {
    const app: oauth.Client = { client_id: NONCE.client_id, token_endpoint_auth_method: 'none' }
    const keyPair = await oauth.generateKeyPair('ES256')
    const dpop = oauth.DPoP(app, keyPair)
    const session = await login(app.client_id, keyPair)
    const refresh = async () =>
      oauth.processRefreshTokenResponse(
        as,
        app,
        await oauth.refreshTokenGrantRequest(
          as,
          app,
          oauth.None(),
          session.refresh_token as string,
          { DPoP: dpop, ...insecure },
        ),
      )
    // The handle knows no nonce yet: the server asks for one, and the handle keeps it.
    const challenge = await refresh().catch((error: unknown) => error)
    expect(oauth.isDPoPNonceError(challenge)).toBe(true)
    const refreshed = await refresh()
    remember(refreshed.access_token, refreshed.refresh_token)
    expect(refreshed.token_type).toBe('dpop')
    expect(refreshed.refresh_token).not.toBe(session.refresh_token)
  })

  it('is refused with another key’s handle, and the right key still refreshes', async () => {
    const app: oauth.Client = { client_id: NATIVE.client_id, token_endpoint_auth_method: 'none' }
    const keyPair = await oauth.generateKeyPair('ES256')
    const session = await login(app.client_id, keyPair)
    const refreshWith = async (handle: oauth.DPoPHandle) =>
      oauth.processRefreshTokenResponse(
        as,
        app,
        await oauth.refreshTokenGrantRequest(
          as,
          app,
          oauth.None(),
          session.refresh_token as string,
          { DPoP: handle, ...insecure },
        ),
      )
    const stranger = oauth.DPoP(app, await oauth.generateKeyPair('ES256'))
    const refused = await refreshWith(stranger).catch((error: unknown) => error)
    expect((refused as oauth.ResponseBodyError).error).toBe('invalid_grant')
    const refreshed = await refreshWith(oauth.DPoP(app, keyPair))
    remember(refreshed.access_token, refreshed.refresh_token)
    expect(refreshed.token_type).toBe('dpop')
  })

  it('binds to an Ed25519 key as well (its proofs say Ed25519 or EdDSA)', async () => {
    const app: oauth.Client = { client_id: NATIVE.client_id, token_endpoint_auth_method: 'none' }
    const keyPair = await oauth.generateKeyPair('Ed25519')
    const dpop = oauth.DPoP(app, keyPair)
    const session = await login(app.client_id, keyPair, 'EdDSA')
    const jkt = await dpop.calculateThumbprint()
    expect(decodePart(session.access_token as string, 1).cnf).toEqual({ jkt })
    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      app,
      await oauth.refreshTokenGrantRequest(as, app, oauth.None(), session.refresh_token as string, {
        DPoP: dpop,
        ...insecure,
      }),
    )
    remember(refreshed.access_token, refreshed.refresh_token)
    expect(decodePart(refreshed.access_token, 1).cnf).toEqual({ jkt })
  })
})

describe('openid-client, unchanged', () => {
  it('refreshes with getDPoPHandle (following the nonce challenge itself) and calls the protected route', async () => {
    const config = await client.discovery(
      new URL(h.issuer),
      NONCE.client_id,
      undefined,
      client.None(),
      { execute: [client.allowInsecureRequests] },
    )
    expect(config.serverMetadata().dpop_signing_alg_values_supported).toContain('ES256')
    const answers: string[] = []
    config[client.customFetch] = async (url, options) => {
      const response = await fetch(url, options as RequestInit)
      answers.push(`${new URL(url).pathname} ${response.status}`)
      return response
    }
    const keyPair = await client.randomDPoPKeyPair('ES256')
    const dpop = client.getDPoPHandle(config, keyPair)
    const session = await login(NONCE.client_id, keyPair)
    const refreshed = await client.refreshTokenGrant(
      config,
      session.refresh_token as string,
      undefined,
      { DPoP: dpop },
    )
    remember(refreshed.access_token, refreshed.refresh_token)
    // The first proof carried no nonce: openid-client took the one offered and retried.
    expect(answers).toEqual(['/token 400', '/token 200'])
    expect(refreshed.token_type).toBe('dpop')
    expect(decodePart(refreshed.access_token, 1).cnf).toEqual({
      jkt: await dpop.calculateThumbprint(),
    })
    const me = await client.fetchProtectedResource(
      config,
      refreshed.access_token,
      new URL(`${h.issuer}/me`),
      'GET',
      null,
      undefined,
      { DPoP: dpop },
    )
    expect(me.status).toBe(200)
    await client.tokenRevocation(config, refreshed.refresh_token as string)
  })
})
