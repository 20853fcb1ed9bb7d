import { generateKeyPairSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { toVerificationKey } from '../../functions/authorizer/keys.js'
import { assertKeyFitsAlg } from '../../functions/core/key-fit.js'
import type { PublicJwk, SigningAlgorithm } from '../../functions/core/ports.js'

const rsa = (bits: number) => generateKeyPairSync('rsa', { modulusLength: bits })
const ec = (namedCurve: string) => generateKeyPairSync('ec', { namedCurve })
const RSA_2048 = rsa(2048)
const EC_P256 = ec('P-256')

describe('assertKeyFitsAlg (the one check for KMS, local and authorizer keys)', () => {
  it('accepts an RSA key of 2048 bits or more for RS256, public or private', () => {
    expect(() => assertKeyFitsAlg(RSA_2048.publicKey, 'RS256', 'key k')).not.toThrow()
    expect(() => assertKeyFitsAlg(RSA_2048.privateKey, 'RS256', 'key k')).not.toThrow()
    expect(() => assertKeyFitsAlg(rsa(3072).publicKey, 'RS256', 'key k')).not.toThrow()
  })

  it('accepts an EC P-256 key for ES256, public or private', () => {
    expect(() => assertKeyFitsAlg(EC_P256.publicKey, 'ES256', 'key k')).not.toThrow()
    expect(() => assertKeyFitsAlg(EC_P256.privateKey, 'ES256', 'key k')).not.toThrow()
  })

  it.each([
    [EC_P256.publicKey, 'RS256', 'key k is an EC prime256v1 key, but RS256 needs an RSA key'],
    [rsa(1024).publicKey, 'RS256', 'key k is an RSA-1024 key, but RS256 needs at least 2048 bits'],
    [RSA_2048.publicKey, 'ES256', 'key k is an RSA-2048 key, but ES256 needs an EC P-256 key'],
    [
      ec('P-384').publicKey,
      'ES256',
      'key k is an EC secp384r1 key, but ES256 needs an EC P-256 key',
    ],
    [RSA_2048.publicKey, 'HS256', 'key k has alg HS256, which is not RS256 or ES256'],
  ] as const)('refuses a key that does not fit its alg, naming both (%#)', (key, alg, message) => {
    expect(() => assertKeyFitsAlg(key, alg as SigningAlgorithm, 'key k')).toThrow(message)
  })
})

describe('the authorizer parsing a published JWK', () => {
  const jwk = (key: typeof RSA_2048.publicKey, alg: string) =>
    ({ ...key.export({ format: 'jwk' }), kid: 'k1', alg, use: 'sig' }) as unknown as PublicJwk

  it('keeps a key that fits its alg', () => {
    expect(toVerificationKey(jwk(RSA_2048.publicKey, 'RS256'))).toMatchObject({
      kid: 'k1',
      alg: 'RS256',
    })
    expect(toVerificationKey(jwk(EC_P256.publicKey, 'ES256'))).toMatchObject({
      kid: 'k1',
      alg: 'ES256',
    })
  })

  it('refuses a key that does not fit its alg', () => {
    expect(() => toVerificationKey(jwk(EC_P256.publicKey, 'RS256'))).toThrow(
      'published key k1 is an EC prime256v1 key, but RS256 needs an RSA key',
    )
    expect(() => toVerificationKey(jwk(rsa(1024).publicKey, 'RS256'))).toThrow(
      'published key k1 is an RSA-1024 key, but RS256 needs at least 2048 bits',
    )
  })
})
