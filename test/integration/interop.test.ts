import { JwtVerifier } from 'aws-jwt-verify'
import { type Jwks, SimpleJwksCache } from 'aws-jwt-verify/jwk'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { User } from '../../functions/core/ports.js'
import { FakeClock } from '../support/clock.js'
import { type Harness, NATIVE, startHarness } from '../support/harness.js'

// aws-jwt-verify reads Date.now() itself: the service's clock must be the real one here.
let h: Harness
let user: User
let token: string

beforeAll(async () => {
  h = await startHarness({ clock: new FakeClock(Date.now()) })
  user = await h.addUser({ roles: ['reader', 'writer'] })
  token = (await h.login(user)).body.access_token
})
afterAll(() => h.close())

/** Fetches over plain http (local mode); aws-jwt-verify's own fetcher speaks only https. */
const httpFetcher = {
  fetch: async (uri: string) => (await fetch(uri)).arrayBuffer(),
}

describe('our access tokens verify with independent libraries', () => {
  it('verify with jose (createRemoteJWKSet on the JWKS URL from discovery)', async () => {
    const discovery = (await (await fetch(`${h.url}/.well-known/openid-configuration`)).json()) as {
      issuer: string
      jwks_uri: string
    }
    expect(discovery.jwks_uri).toBe(`${h.issuer}/.well-known/jwks.json`)
    const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri))
    const { payload, protectedHeader } = await jwtVerify(token, jwks, {
      issuer: discovery.issuer,
      audience: NATIVE.audience,
      typ: 'at+jwt',
      algorithms: ['RS256'],
      requiredClaims: ['sub', 'exp', 'iat', 'jti', 'client_id', 'sid'],
    })
    expect(protectedHeader.typ).toBe('at+jwt')
    expect(payload).toMatchObject({ sub: user.sub, roles: ['reader', 'writer'] })
  })

  it('verify with aws-jwt-verify (JwtVerifier on the JWKS URL)', async () => {
    const verifier = JwtVerifier.create(
      {
        issuer: h.issuer,
        audience: NATIVE.audience,
        jwksUri: `${h.issuer}/.well-known/jwks.json`,
        customJwtCheck: ({ header }) => {
          if (header.typ !== 'at+jwt') throw new Error('not an access token')
        },
      },
      { jwksCache: new SimpleJwksCache({ fetcher: httpFetcher }) },
    )
    const payload = await verifier.verify(token)
    expect(payload).toMatchObject({ sub: user.sub, client_id: NATIVE.client_id })
  })

  it('verify with aws-jwt-verify hydrated by cacheJwks (no fetch per token)', async () => {
    const jwks = (await (await fetch(`${h.url}/.well-known/jwks.json`)).json()) as Jwks
    const verifier = JwtVerifier.create({
      issuer: h.issuer,
      audience: NATIVE.audience,
      jwksUri: 'https://not-fetched.invalid/jwks.json',
    })
    verifier.cacheJwks(jwks)
    await expect(verifier.verify(token)).resolves.toMatchObject({ sub: user.sub })
  })

  it('and the same libraries refuse a token whose payload was swapped', async () => {
    const [header, , signature] = token.split('.')
    const claims = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString())
    const forged = `${header}.${Buffer.from(JSON.stringify({ ...claims, roles: ['admin'] })).toString('base64url')}.${signature}`
    const jwks = createRemoteJWKSet(new URL(`${h.issuer}/.well-known/jwks.json`))
    await expect(jwtVerify(forged, jwks, { issuer: h.issuer })).rejects.toThrow(/signature/)
    const verifier = JwtVerifier.create(
      { issuer: h.issuer, audience: NATIVE.audience, jwksUri: `${h.issuer}/.well-known/jwks.json` },
      { jwksCache: new SimpleJwksCache({ fetcher: httpFetcher }) },
    )
    await expect(verifier.verify(forged)).rejects.toThrow(/signature/i)
  })
})
