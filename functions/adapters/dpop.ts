/**
 * DPoP's ports in a deployed function (docs/design.md "DPoP"): the proof
 * verifier, the proofs' single use on DynamoDB, and the nonces, whose key
 * comes from a KMS HMAC key.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { GenerateMacCommand, type KMSClient } from '@aws-sdk/client-kms'
import type { Clock } from '../core/clock.js'
import { type DpopNonceCheck, DpopVerifier } from '../core/dpop.js'
import { DpopGrant } from '../core/dpop-grant.js'
import { DpopNonces } from '../core/dpop-nonce.js'
import { TemporarilyUnavailable } from '../core/errors.js'
import { DynamoDpopReplay } from './dynamodb/dpop-replay.js'

/**
 * What the nonce key is derived from: a fixed message, so every container
 * derives the same key, versioned so that a new derivation can never collide.
 */
export const NONCE_KEY_MESSAGE = 'dpop-nonce-key/v1'

/**
 * The nonces, keyed by `GenerateMac(HMAC_SHA_256, NONCE_KEY_MESSAGE)` under
 * the KMS key `keyId`: the key never leaves KMS, every container derives the
 * same nonce key, and replacing the KMS key changes it. One KMS call per
 * container, on the first request of a nonce client; a failure (503) is
 * forgotten, so the next request tries again.
 */
export function kmsDpopNonces(
  kms: KMSClient,
  keyId: string,
  clock: Clock,
): () => Promise<DpopNonceCheck> {
  let nonces: Promise<DpopNonceCheck> | undefined
  return () => {
    if (nonces) return nonces
    const derived = deriveKey(kms, keyId).then((key) => new DpopNonces(key, clock))
    nonces = derived
    derived.catch(() => {
      if (nonces === derived) nonces = undefined
    })
    return derived
  }
}

async function deriveKey(kms: KMSClient, keyId: string): Promise<Uint8Array> {
  let mac: Uint8Array | undefined
  try {
    const output = await kms.send(
      new GenerateMacCommand({
        KeyId: keyId,
        MacAlgorithm: 'HMAC_SHA_256',
        Message: new TextEncoder().encode(NONCE_KEY_MESSAGE),
      }),
    )
    mac = output.Mac
  } catch (cause) {
    const name = cause instanceof Error ? cause.name : 'unknown'
    throw new TemporarilyUnavailable(`kms GenerateMac failed: ${name}`, { cause })
  }
  if (!mac || mac.length === 0) throw new Error('kms GenerateMac returned no MAC')
  return mac
}

export interface LambdaDpopParts {
  readonly kms: KMSClient
  readonly dynamodb: DynamoDBClient
  readonly tableName: string
  /** `DPOP_NONCE_KEY_ID` (config.ts `loadDpopNonceKeyId`): set when a client has `dpop_nonce`. */
  readonly nonceKeyId: string | undefined
  readonly clock: Clock
}

/** `/login` and `/token`'s DPoP in Lambda. Builds clients only; no I/O until a request. */
export function lambdaDpopGrant(parts: LambdaDpopParts): DpopGrant {
  const { kms, nonceKeyId, clock } = parts
  return new DpopGrant({
    verifier: new DpopVerifier(clock),
    nonces: nonceKeyId ? kmsDpopNonces(kms, nonceKeyId, clock) : noNonceKey,
    replay: new DynamoDpopReplay(parts.dynamodb, parts.tableName),
    clock,
  })
}

/** Only nonce clients ask for nonces, and config.ts refuses them without a key. */
const noNonceKey = (): Promise<DpopNonceCheck> =>
  Promise.reject(new Error('DPOP_NONCE_KEY_ID is not set'))
