/**
 * Hand-built JWS for the authorizer's tests: genuine tokens signed by our
 * signer with any header and claims, and the pieces forged tokens are made of.
 */
import { createHmac, type KeyObject, randomUUID, sign as rsaSign } from 'node:crypto'
import type { Jwks } from 'aws-jwt-verify/jwk'
import type { JWK } from 'jose'
import type { Signer } from '../../functions/core/ports.js'
import { recordSecret } from './secrets.js'

/** Base64url of bytes, or of a string's UTF-8. */
export const b64url = (value: string | Uint8Array): string =>
  Buffer.from(value).toString('base64url')

/** Base64url of a string, or of any other value's JSON. */
export const b64 = (value: unknown): string =>
  b64url(typeof value === 'string' ? value : JSON.stringify(value))

export const decodePart = (token: string, index: 0 | 1): Record<string, unknown> =>
  JSON.parse(Buffer.from(token.split('.')[index] as string, 'base64url').toString())

export interface Minted {
  readonly token: string
  readonly header: Record<string, unknown>
  readonly claims: Record<string, unknown>
}

/** The claims our service issues, for `now` (epoch ms). */
export function standardClaims(
  issuer: string,
  audience: string,
  now: number,
): Record<string, unknown> {
  const seconds = Math.floor(now / 1000)
  return {
    iss: issuer,
    sub: '4a1c2f0e-6b7d-4e8f-9a0b-1c2d3e4f5a6b',
    aud: audience,
    exp: seconds + 900,
    iat: seconds - 5,
    nbf: seconds - 5,
    jti: '0f1e2d3c-4b5a-4968-8776-655443322110',
    client_id: 'test-native',
    scope: 'openid api',
    sid: 'c2Vzc2lvbi1pZC0xMjM0NQ',
    roles: ['reader'],
    username: 'alice',
  }
}

/** Signs `header.claims` with our signer; `header` members set to undefined are left out. */
export async function mint(
  signer: Signer,
  claims: Record<string, unknown>,
  header: Record<string, unknown> = {},
): Promise<Minted> {
  const fullHeader = JSON.parse(
    JSON.stringify({ alg: signer.alg, typ: 'at+jwt', kid: await signer.keyId(), ...header }),
  )
  const input = `${b64(fullHeader)}.${b64(claims)}`
  const signature = await signer.sign(new TextEncoder().encode(input))
  const token = `${input}.${b64url(signature)}`
  recordSecret(token)
  return { token, header: fullHeader, claims }
}

/**
 * An RFC 9068 access token as the token endpoint builds it, signed by `signer`,
 * valid for five minutes of the real clock (third-party verifiers read it).
 */
export async function issueToken(
  signer: Signer,
  claims: { iss: string; aud: string } & Record<string, unknown>,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  const { token } = await mint(signer, {
    sub: 'user-123',
    client_id: 'web',
    iat: now,
    nbf: now,
    exp: now + 300,
    jti: randomUUID(),
    ...claims,
  })
  return token
}

/** A signer's JWKS as a client sees it: serialized and parsed again. */
export async function publishedJwks(signer: Signer): Promise<Jwks & { keys: JWK[] }> {
  return JSON.parse(JSON.stringify({ keys: await signer.publicKeys() }))
}

/** RS256 with a key of the caller's choosing (an attacker's). */
export function signRs256(
  privateKey: KeyObject,
  header: Record<string, unknown>,
  claims: Record<string, unknown>,
): string {
  const input = `${b64(header)}.${b64(claims)}`
  return `${input}.${rsaSign('sha256', Buffer.from(input), privateKey).toString('base64url')}`
}

/** HS256 keyed with any bytes: the classic RS256/HS256 confusion when keyed with the public key. */
export function signHs256(
  secret: string | Buffer,
  header: Record<string, unknown>,
  claims: Record<string, unknown>,
): string {
  const input = `${b64(header)}.${b64(claims)}`
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
}
