import { type RemovalPolicy, Tags } from 'aws-cdk-lib'
import * as kms from 'aws-cdk-lib/aws-kms'
import { Construct } from 'constructs'
import { ENVELOPE_KEY_PREFIX } from '../functions/adapters/signing.js'
import type { SigningAlgorithm, SigningMode } from './signing-keys.js'
import type { TokenFunction } from './token-function.js'

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
}

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
  /** The symmetric key that wraps the private keys. */
  public readonly key: kms.Key
  readonly #props: EnvelopeSigningProps

  constructor(scope: Construct, id: string, props: EnvelopeSigningProps) {
    super(scope, id)
    this.#props = props
    this.key = new kms.Key(this, 'Key', {
      description: `Wraps the private keys of the envelope signing keys of ${scope.node.path}`,
      enableKeyRotation: true,
      removalPolicy: props.removalPolicy,
    })
    Tags.of(this.key).add(...props.tag)
  }

  /**
   * `login` and `token`: unwrap the private key of the keys they may sign with
   * (the active key and the transition keys), and generate the pair of one
   * that no function has published yet.
   */
  grantSign(fn: TokenFunction, ids: readonly string[]): void {
    if (ids.length === 0) return
    fn.allow(['kms:Decrypt'], [this.key.keyArn], {
      StringEquals: envelopeContextConditions(this.#props.owner, ids),
    })
    this.#grantGenerate(fn, ids)
  }

  #grantGenerate(fn: TokenFunction, ids: readonly string[]): void {
    fn.allow(['kms:GenerateDataKeyPairWithoutPlaintext'], [this.key.keyArn], {
      StringEquals: {
        ...envelopeContextConditions(this.#props.owner, ids),
        'kms:DataKeyPairSpec': KEY_PAIR_SPECS[this.#props.algorithm],
      },
    })
  }
}
