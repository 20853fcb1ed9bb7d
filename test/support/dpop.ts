/**
 * Hand-built DPoP proofs (RFC 9449 §4.2) for the tests: genuine ones signed
 * with `node:crypto`, and the pieces forged ones are made of.
 */
import { generateKeyPairSync, type JsonWebKey, type KeyObject, randomUUID, sign } from 'node:crypto'
import { b64, b64url } from './tokens.js'

export type ProofAlg = 'ES256' | 'RS256' | 'EdDSA' | 'Ed25519'

export interface ProofKey {
  readonly alg: ProofAlg
  readonly privateKey: KeyObject
  /** The public key as a JWK: what a proof's `jwk` header carries. */
  readonly jwk: JsonWebKey
}

/** A fresh key pair for `alg`. */
export function proofKey(alg: ProofAlg = 'ES256', rsaBits = 2048): ProofKey {
  const pair =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : alg === 'RS256'
        ? generateKeyPairSync('rsa', { modulusLength: rsaBits })
        : generateKeyPairSync('ed25519')
  return { alg, privateKey: pair.privateKey, jwk: pair.publicKey.export({ format: 'jwk' }) }
}

/** The signature of `input` as a JWS carries it (R||S for ES256). */
export function jwsSignature(alg: ProofAlg, privateKey: KeyObject, input: string): Buffer {
  const data = Buffer.from(input)
  if (alg === 'ES256') return sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' })
  if (alg === 'RS256') return sign('sha256', data, privateKey)
  return sign(null, data, privateKey)
}

/** The claims of a fresh proof for `POST uri` at `now` (epoch ms). */
export function proofClaims(
  now: number,
  uri: string,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return { jti: randomUUID(), htm: 'POST', htu: uri, iat: Math.floor(now / 1000), ...overrides }
}

export interface ProofOptions {
  /** Header members to set; set one to undefined to leave it out. */
  readonly header?: Record<string, unknown>
  /** Sign with this private key instead of the one the header's `jwk` names. */
  readonly signWith?: KeyObject
}

/** A compact DPoP proof: `{typ, alg, jwk}` and `claims`, signed. */
export function signProof(
  key: ProofKey,
  claims: Record<string, unknown>,
  options: ProofOptions = {},
): string {
  const header = JSON.parse(
    JSON.stringify({ typ: 'dpop+jwt', alg: key.alg, jwk: key.jwk, ...options.header }),
  )
  const input = `${b64(header)}.${b64(claims)}`
  return `${input}.${b64url(jwsSignature(key.alg, options.signWith ?? key.privateKey, input))}`
}

/** The order of P-256. */
export const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n

/** The other encoding of an ES256 proof's signature: (r, n - s), which verifies as well. */
export function otherS(proof: string): string {
  const [input, signature] = [proof.slice(0, proof.lastIndexOf('.')), proof.split('.')[2]]
  const bytes = Buffer.from(signature as string, 'base64url')
  const s = BigInt(`0x${bytes.subarray(32).toString('hex')}`)
  const flipped = Buffer.from((P256_N - s).toString(16).padStart(64, '0'), 'hex')
  return `${input}.${b64url(Buffer.concat([bytes.subarray(0, 32), flipped]))}`
}

/** True when an ES256 proof's S is in the upper half of the group order. */
export function hasHighS(proof: string): boolean {
  const bytes = Buffer.from(proof.split('.')[2] as string, 'base64url')
  return BigInt(`0x${bytes.subarray(32).toString('hex')}`) > P256_N / 2n
}
