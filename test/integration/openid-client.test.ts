import { createRemoteJWKSet, jwtVerify } from 'jose'
import {
  allowInsecureRequests,
  type Configuration,
  discovery,
  None,
  ResponseBodyError,
  refreshTokenGrant,
  tokenRevocation,
} from 'openid-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashToken } from '../../functions/core/refresh-token.js'
import { type Harness, NATIVE, startHarness } from '../support/harness.js'
import { recordSecret } from '../support/secrets.js'

/**
 * A standard OAuth 2.0 client (openid-client v6, on oauth4webapi) against the
 * real HTTP API: discovery, refresh, access-token verification with jose and
 * the published JWKS, revocation.
 */
let h: Harness
let config: Configuration

/** Tokens that reach the test outside the harness's own requests: keep the log scan aware of them. */
function remember(...tokens: (string | undefined)[]): void {
  for (const token of tokens) if (token) recordSecret(token, hashToken(token))
}

beforeAll(async () => {
  h = await startHarness()
  // Plain http on 127.0.0.1: openid-client refuses it unless told otherwise.
  config = await discovery(new URL(h.issuer), NATIVE.client_id, undefined, None(), {
    execute: [allowInsecureRequests],
  })
})
afterAll(() => h?.close())

describe('openid-client', () => {
  it('discovers the server metadata', async () => {
    const metadata = config.serverMetadata()
    expect(metadata.issuer).toBe(h.issuer)
    expect(metadata.token_endpoint).toBe(`${h.issuer}/token`)
    expect(metadata.revocation_endpoint).toBe(`${h.issuer}/revoke`)
    expect(metadata.jwks_uri).toBe(`${h.issuer}/.well-known/jwks.json`)
    expect(metadata.grant_types_supported).toContain('refresh_token')
    expect(metadata.token_endpoint_auth_methods_supported).toContain('none')
    expect(metadata.id_token_signing_alg_values_supported).toContain('RS256')
  })

  it('serves the same document at the RFC 8414 and the OIDC discovery paths', async () => {
    const oidc = await h.get('/.well-known/openid-configuration')
    const oauth = await h.get('/.well-known/oauth-authorization-server')
    expect(oidc.status).toBe(200)
    expect(oauth.status).toBe(200)
    expect(oauth.headers.get('content-type')).toMatch(/^application\/json/)
    expect(oauth.body).toEqual(oidc.body)
    expect(oauth.body.issuer).toBe(h.issuer)
  })

  it('refreshes, verifies the access token with jose, revokes, and is refused afterwards', async () => {
    const user = await h.addUser({ roles: ['reader'] })
    const login = await h.login(user)
    expect(login.status).toBe(200)
    const refreshToken = login.body.refresh_token as string
    expect(refreshToken).toMatch(/^rt1_/)

    const refreshed = await refreshTokenGrant(config, refreshToken)
    remember(refreshed.access_token, refreshed.refresh_token)
    expect(refreshed.token_type).toBe('bearer')
    expect(refreshed.access_token).toEqual(expect.any(String))
    expect(refreshed.refresh_token).toMatch(/^rt1_/)
    expect(refreshed.refresh_token).not.toBe(refreshToken)
    expect(refreshed.expiresIn()).toBeGreaterThan(0)
    const newRefreshToken = refreshed.refresh_token as string

    const jwksUri = config.serverMetadata().jwks_uri as string
    const { payload, protectedHeader } = await jwtVerify(
      refreshed.access_token,
      createRemoteJWKSet(new URL(jwksUri)),
      {
        typ: 'at+jwt',
        issuer: h.issuer,
        audience: NATIVE.audience,
        algorithms: ['RS256'],
        // The harness runs on a fake clock; the token's iat/nbf/exp follow it.
        currentDate: new Date(h.clock.now()),
      },
    )
    expect(protectedHeader.kid).toEqual(expect.any(String))
    expect(payload.sub).toBe(user.sub)
    expect(payload.client_id).toBe(NATIVE.client_id)
    expect(payload.username).toBe(user.username)

    await expect(tokenRevocation(config, newRefreshToken)).resolves.toBeUndefined()

    const refused = await refreshTokenGrant(config, newRefreshToken).catch(
      (error: unknown) => error,
    )
    expect(refused).toBeInstanceOf(ResponseBodyError)
    expect((refused as ResponseBodyError).error).toBe('invalid_grant')
    expect((refused as ResponseBodyError).status).toBe(400)
  })
})
