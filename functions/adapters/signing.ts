import type { KMSClient } from '@aws-sdk/client-kms'
import type { EnvelopeConfig, SigningConfig } from '../config.js'
import type { PublicJwk, Signer } from '../core/ports.js'
import { type EnvelopeKeyStore, EnvelopeSigner } from './envelope-signer.js'
import { KmsSigner } from './kms-signer.js'

/**
 * How `SIGNING_KEY_ID` and `RETIRING_KEY_IDS` name an envelope key
 * (`envelope:<id>`, the `signingKeys` id); anything else is a KMS key (ARN,
 * id or alias) that signs with `kms:Sign`.
 */
export const ENVELOPE_KEY_PREFIX = 'envelope:'

const isEnvelope = (keyId: string) => keyId.startsWith(ENVELOPE_KEY_PREFIX)
const envelopeId = (keyId: string) => keyId.slice(ENVELOPE_KEY_PREFIX.length)

/** A signer that can do its cold-start work ahead of the first request. */
export interface PreparedSigner extends Signer {
  /** Envelope keys: unwraps the active private key once. KMS keys: nothing. */
  prepare(): Promise<void>
}

/** What `lambdaSigner` and `lambdaPublisher` are built from. */
export interface LambdaSigningParts {
  readonly kms: KMSClient
  readonly signing: SigningConfig
  /** Needed as soon as one key is an envelope key: where the pairs are stored (the table). */
  readonly envelope?: EnvelopeConfig & { readonly store: EnvelopeKeyStore }
}

/** The active key's signer, and one of the other mode for the keys it does not hold. */
function keySigners(parts: LambdaSigningParts): {
  readonly signer: KmsSigner | EnvelopeSigner
  readonly others: KmsSigner | EnvelopeSigner | undefined
} {
  const { kms, signing, envelope } = parts
  const { activeKeyId, retiringKeyIds, alg } = signing
  const all = [activeKeyId, ...retiringKeyIds]
  const kmsIds = all.filter((id) => !isEnvelope(id))
  const envelopeIds = all.filter(isEnvelope).map(envelopeId)
  const kmsSigner = (first: string | undefined) =>
    first === undefined
      ? undefined
      : new KmsSigner({
          client: kms,
          activeKeyId: first,
          retiringKeyIds: kmsIds.filter((id) => id !== first),
          alg,
        })
  const envelopeSigner = (first: string | undefined) => {
    if (first === undefined) return undefined
    if (!envelope) throw new Error(`envelope keys ${envelopeIds.join(', ')} need ENVELOPE_KEY_ID`)
    return new EnvelopeSigner({
      client: kms,
      store: envelope.store,
      ...(envelope.wrappingKeyId !== undefined && { wrappingKeyId: envelope.wrappingKeyId }),
      ...(envelope.multiRegionKeyId !== undefined && {
        multiRegionKeyId: envelope.multiRegionKeyId,
      }),
      owner: envelope.owner,
      activeKeyId: first,
      retiringKeyIds: envelopeIds.filter((id) => id !== first),
      alg,
    })
  }
  const active = isEnvelope(activeKeyId)
  const signer = active
    ? (envelopeSigner(envelopeId(activeKeyId)) as EnvelopeSigner)
    : (kmsSigner(activeKeyId) as KmsSigner)
  const others = active ? kmsSigner(kmsIds[0]) : envelopeSigner(envelopeIds[0])
  return { signer, others }
}

/** Every listed key's public key, each `kid` once: the active key's first. */
async function publicKeysOf(
  signer: KmsSigner | EnvelopeSigner,
  others: KmsSigner | EnvelopeSigner | undefined,
): Promise<PublicJwk[]> {
  const [mine, theirs] = await Promise.all([signer.publicKeys(), others?.publicKeys() ?? []])
  const byKid = new Map<string, PublicJwk>()
  for (const key of [...mine, ...theirs]) if (!byKid.has(key.kid)) byKid.set(key.kid, key)
  return [...byKid.values()]
}

/**
 * The signer of a deployed function (docs/design.md "Keys"): each key signs as
 * its mode says, `kms` (a KMS `Sign` per token) or `envelope` (in memory, with
 * a key pair KMS generated and wrapped), and a stack in the middle of a switch
 * lists keys of both: the active one signs, every one is published.
 */
export function lambdaSigner(parts: LambdaSigningParts): PreparedSigner {
  const { signer, others } = keySigners(parts)
  const prepare = () => (signer instanceof EnvelopeSigner ? signer.prepare() : Promise.resolve())
  return {
    alg: parts.signing.alg,
    keyId: () => signer.keyId(),
    sign: (input) => signer.sign(input),
    prepare,
    publicKeys: () => publicKeysOf(signer, others),
  }
}

/**
 * The jwks function's side of `lambdaSigner`: every listed key's public key, and
 * nothing that signs or unwraps (its row in functions/routes.ts: `publish` uses only).
 */
export function lambdaPublisher(parts: LambdaSigningParts): Pick<Signer, 'alg' | 'publicKeys'> {
  const { signer, others } = keySigners(parts)
  return { alg: parts.signing.alg, publicKeys: () => publicKeysOf(signer, others) }
}
