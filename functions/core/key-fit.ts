import type { KeyObject } from 'node:crypto'
import type { SigningAlgorithm } from './ports.js'

/**
 * Throws unless `key` (public or private) can sign or verify `alg`: RS256
 * needs an RSA key of at least 2048 bits, ES256 an EC P-256 key. The one check
 * for KMS keys, the local key and the keys the authorizer reads from a JWKS.
 *
 * @param what names the key in the message, e.g. `kms key alias/signing`.
 */
export function assertKeyFitsAlg(key: KeyObject, alg: SigningAlgorithm, what: string): void {
  const type = key.asymmetricKeyType
  const details = key.asymmetricKeyDetails ?? {}
  const refuse = (need: string) => {
    throw new Error(`${what} is ${describeKey(key)}, but ${alg} needs ${need}`)
  }
  if (alg === 'RS256') {
    if (type !== 'rsa') refuse('an RSA key')
    if ((details.modulusLength ?? 0) < 2048) refuse('at least 2048 bits')
    return
  }
  if (alg === 'ES256') {
    if (type !== 'ec' || details.namedCurve !== 'prime256v1') refuse('an EC P-256 key')
    return
  }
  // A JWKS is read from outside: its alg is not known to be one of ours.
  throw new Error(`${what} has alg ${String(alg)}, which is not RS256 or ES256`)
}

function describeKey(key: KeyObject): string {
  const details = key.asymmetricKeyDetails ?? {}
  const type = (key.asymmetricKeyType ?? 'unknown').toUpperCase()
  if (details.namedCurve) return `an ${type} ${details.namedCurve} key`
  if (details.modulusLength) return `an ${type}-${details.modulusLength} key`
  return `a ${type} key`
}
