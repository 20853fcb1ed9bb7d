import { type RemovalPolicy, Tags } from 'aws-cdk-lib'
import * as kms from 'aws-cdk-lib/aws-kms'
import { Construct } from 'constructs'
import { ENVELOPE_KEY_PREFIX } from '../functions/adapters/signing.js'
import type { SigningAlgorithm, SigningMode } from './signing-keys.js'
import type { TokenFunction } from './token-function.js'
import { keyPolicy, replicaKey } from './token-service-keys.js'

/** The KMS key-pair spec of each algorithm (as functions/adapters/envelope-signer.ts asks for it). */
const KEY_PAIR_SPECS: Readonly<Record<SigningAlgorithm, string>> = {
  RS256: 'RSA_2048',
  ES256: 'ECC_NIST_P256',
}

/**
 * How each signing key signs: its mode in the ledger (fixed when it was
 * added), else the stack's `signing` setting.
 */
export function modeOf(
  id: string,
  signing: SigningMode,
  modes: Readonly<Record<string, SigningMode>> | undefined,
): SigningMode {
  return modes?.[id] ?? signing
}

/**
 * The encryption context's conditions (functions/adapters/envelope-signer.ts
 * `envelopeContext`): this stack's keys, and of them `ids` unless `any`.
 */
export function envelopeContextConditions(
  owner: string,
  ids: readonly string[] | 'any',
): Record<string, string | readonly string[]> {
  return {
    'kms:EncryptionContext:owner': owner,
    ...(ids !== 'any' && { 'kms:EncryptionContext:signing-key': [...ids] }),
  }
}

/** The KMS key-pair spec of an algorithm, as the envelope signer asks for it. */
export const keyPairSpec = (algorithm: SigningAlgorithm) => KEY_PAIR_SPECS[algorithm]

/** How the functions' environment names an envelope key (functions/adapters/signing.ts). */
export const envelopeKeyName = (id: string) => `${ENVELOPE_KEY_PREFIX}${id}`

export interface EnvelopeSigningProps {
  readonly algorithm: SigningAlgorithm
  /** `<stack>/<construct id>`: the `owner` of every private key's encryption context. */
  readonly owner: string
  readonly removalPolicy: RemovalPolicy
  /** Tags the key as this service's (the jwks function's grant by tag). */
  readonly tag: readonly [name: string, value: string]
  /**
   * Whether a listed envelope key was added before `regions` (the ledger): its pair is
   * wrapped under the single-Region key `Key`, which exists as long as one is listed.
   * @default true
   */
  readonly singleRegion?: boolean
  /**
   * With `regions`, when a listed envelope key was added with them: the multi-Region
   * wrapping key `MultiRegionKey`; in the primary's stack a new multi-Region key
   * (`primaryKeyArn` absent), elsewhere its replica (`AWS::KMS::ReplicaKey`).
   */
  readonly multiRegion?: { readonly primaryKeyArn?: string }
}

/** What the wrapping keys may be used for: unwrap, and generate a wrapped pair. */
const WRAPPING_USE = ['kms:Decrypt', 'kms:GenerateDataKeyPairWithoutPlaintext'] as const

/**
 * Envelope signing keys (docs/design.md "Keys"): one symmetric KMS key of the
 * stack wraps every envelope key's private key. KMS generates each pair
 * (`GenerateDataKeyPairWithoutPlaintext`), so the private key exists in plain
 * only inside KMS and, unwrapped, in the memory of `login` and `token`. Every
 * use names the key in its encryption context (`owner`, `signing-key`), and
 * the grants below condition on it: only `login` and `token` may unwrap, and
 * only the keys they may sign with. (The jwks function's grant, by tag, is
 * the stack's: it holds before the first envelope key exists.)
 */
export class EnvelopeSigning extends Construct {
  /**
   * The single-Region symmetric key that wraps the private keys of the envelope keys added
   * before `regions` (every envelope key with one region): `ENVELOPE_KEY_ID`.
   */
  public readonly key?: kms.IKey
  /**
   * With `regions`, this region's copy of the multi-Region symmetric key that wraps the
   * private keys of the envelope keys added with them (docs/multi-region.md "Envelope
   * keys"): `ENVELOPE_MULTI_REGION_KEY_ID`. Same key id and material in every region, so
   * a pair wrapped in one region unwraps in any other under its own region's copy.
   */
  public readonly multiRegionKey?: kms.IKey
  readonly #props: EnvelopeSigningProps

  constructor(scope: Construct, id: string, props: EnvelopeSigningProps) {
    super(scope, id)
    this.#props = props
    const description = `Wraps the private keys of the envelope signing keys of ${scope.node.path}`
    if (props.singleRegion ?? true) {
      // Unchanged from before regions: a key's MultiRegion cannot change in place.
      const key = new kms.Key(this, 'Key', {
        description,
        enableKeyRotation: true,
        removalPolicy: props.removalPolicy,
      })
      Tags.of(key).add(...props.tag)
      this.key = key
    }
    if (props.multiRegion) {
      const { primaryKeyArn } = props.multiRegion
      const policy = keyPolicy(WRAPPING_USE, { multiRegion: true })
      if (primaryKeyArn) {
        // Same construct id as the primary's key, so the same logical id in every stack.
        this.multiRegionKey = replicaKey(this, 'MultiRegionKey', {
          primaryKeyArn,
          description,
          keyPolicy: policy,
          removalPolicy: props.removalPolicy,
          tags: [{ key: props.tag[0], value: props.tag[1] }],
        })
      } else {
        const key = new kms.Key(this, 'MultiRegionKey', {
          description,
          enableKeyRotation: true,
          multiRegion: true,
          policy,
          removalPolicy: props.removalPolicy,
        })
        Tags.of(key).add(...props.tag)
        this.multiRegionKey = key
      }
    }
  }

  /** The key that wraps the pairs generated from now on: the multi-Region key when there is one. */
  get generatingKey(): kms.IKey {
    return (this.multiRegionKey ?? this.key) as kms.IKey
  }

  /** Every wrapping key of this stack: a pair may be wrapped under either. */
  get wrappingKeys(): kms.IKey[] {
    return [this.key, this.multiRegionKey].filter((key): key is kms.IKey => key !== undefined)
  }

  /**
   * `login` and `token`: unwrap the private key of the keys they may sign with
   * (the active key and the transition keys), and generate the pair of one
   * that no function has published yet.
   */
  grantSign(fn: TokenFunction, ids: readonly string[]): void {
    if (ids.length === 0) return
    // Under either wrapping key: the item records which one wrapped its pair.
    fn.allow(
      ['kms:Decrypt'],
      this.wrappingKeys.map((key) => key.keyArn),
      { StringEquals: envelopeContextConditions(this.#props.owner, ids) },
    )
    this.#grantGenerate(fn, ids)
  }

  #grantGenerate(fn: TokenFunction, ids: readonly string[]): void {
    fn.allow(['kms:GenerateDataKeyPairWithoutPlaintext'], [this.generatingKey.keyArn], {
      StringEquals: {
        ...envelopeContextConditions(this.#props.owner, ids),
        'kms:DataKeyPairSpec': KEY_PAIR_SPECS[this.#props.algorithm],
      },
    })
  }
}
