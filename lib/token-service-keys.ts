import { Duration, RemovalPolicy, Stack, Tags, Validations } from 'aws-cdk-lib'
import * as iam from 'aws-cdk-lib/aws-iam'
import * as kms from 'aws-cdk-lib/aws-kms'
import type { Construct } from 'constructs'
import { KMS_SIGNING_ALGORITHMS } from '../functions/adapters/kms-signer.js'
import type { KmsUse } from '../functions/routes.js'
import type { TokenFunction } from './token-function.js'
import type { ResolvedProps } from './token-service-props.js'

/**
 * The tag every signing key carries, valued `<stack name>/<construct id>`: the jwks function
 * may read the public key of any key with this service's tag (docs/operations.md "Key rotation").
 */
export const SIGNING_KEY_TAG = 'token-service:signing-key-of'

/**
 * What a key administrator may do: manage the key, its aliases, tags, grants and deletion;
 * never use it (no Sign, Decrypt, GenerateDataKey or GenerateMac, no CreateGrant).
 */
export const KEY_ADMIN_ACTIONS = [
  'kms:CancelKeyDeletion',
  'kms:CreateAlias',
  'kms:DeleteAlias',
  'kms:DescribeKey',
  'kms:DisableKey',
  'kms:DisableKeyRotation',
  'kms:EnableKey',
  'kms:EnableKeyRotation',
  'kms:GetKeyPolicy',
  'kms:GetKeyRotationStatus',
  'kms:ListAliases',
  'kms:ListGrants',
  'kms:ListKeyPolicies',
  'kms:ListResourceTags',
  'kms:PutKeyPolicy',
  'kms:RevokeGrant',
  'kms:RotateKeyOnDemand',
  'kms:ScheduleKeyDeletion',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:UpdateAlias',
  'kms:UpdateKeyDescription',
] as const

/**
 * A key policy that separates administration from use, as AWS recommends, instead of CDK's
 * default (the account root `kms:*`): one statement lets the account's IAM policies grant the
 * administration of the key, another only the uses its kind allows (`use`). So a role gets
 * exactly what its IAM policy names within each: the functions' roles use and never
 * administer; an operator's role may administer and, unless its policy says so, never use.
 */
export function keyPolicy(use: readonly string[]): iam.PolicyDocument {
  const account = new iam.AccountRootPrincipal()
  return new iam.PolicyDocument({
    statements: [
      new iam.PolicyStatement({
        sid: 'KeyAdministration',
        principals: [account],
        actions: [...KEY_ADMIN_ACTIONS],
        resources: ['*'],
      }),
      new iam.PolicyStatement({
        sid: 'KeyUse',
        principals: [account],
        actions: [...use],
        resources: ['*'],
      }),
    ],
  })
}

/** The service's KMS keys, and the one way to grant each use of them. */
export interface ServiceKeys {
  /** Every signing key, by its `id`. */
  readonly signingKeys: Readonly<Record<string, kms.Key>>
  readonly activeKey: kms.Key
  readonly activeKeyAlias: kms.Alias
  readonly retiringKeys: readonly kms.Key[]
  readonly graceKey: kms.Key
  /** Only when some client has `dpop_nonce`. */
  readonly dpopNonceKey?: kms.Key
  /**
   * Grants a function one use of the keys (its row's `kms` in functions/routes.ts), with its
   * conditions; no other code grants KMS.
   */
  readonly grant: Readonly<Record<KmsUse, (fn: TokenFunction) => void>>
}

/**
 * The signing keys (one per listed `id`, each with its alias, and the active alias),
 * the grace key and, with a `dpop_nonce` client, the DPoP nonce key; in `scope`.
 */
export function buildKeys(scope: Construct, resolved: ResolvedProps): ServiceKeys {
  const { algorithm, removalPolicy } = resolved
  const stackName = Stack.of(scope).stackName
  const aliasPrefix = `alias/${stackName}/${scope.node.id}`
  const keyTag = `${stackName}/${scope.node.id}`
  const signingKeys: Record<string, kms.Key> = {}
  for (const spec of resolved.signingKeys) {
    const key = new kms.Key(scope, `SigningKey-${spec.id}`, {
      description: `Signs the access tokens (${algorithm}) of ${scope.node.path}: key ${spec.id}`,
      keySpec: algorithm === 'RS256' ? kms.KeySpec.RSA_2048 : kms.KeySpec.ECC_NIST_P256,
      keyUsage: kms.KeyUsage.SIGN_VERIFY,
      policy: keyPolicy(['kms:Sign', 'kms:GetPublicKey']),
      removalPolicy,
    })
    Tags.of(key).add(SIGNING_KEY_TAG, keyTag)
    new kms.Alias(scope, `SigningKeyAlias-${spec.id}`, {
      aliasName: `${aliasPrefix}/${spec.id}`,
      targetKey: key,
    })
    signingKeys[spec.id] = key
  }
  const keyOf = (id: string) => signingKeys[id] as kms.Key
  const activeKey = keyOf(resolved.activeKeyId)
  const retiringKeys = resolved.signingKeys
    .filter((spec) => spec.id !== resolved.activeKeyId)
    .map((spec) => keyOf(spec.id))
  // Follows the active key, so that operators can reach it by one stable name.
  const activeKeyAlias = new kms.Alias(scope, 'ActiveSigningKeyAlias', {
    aliasName: `${aliasPrefix}/active`,
    targetKey: activeKey,
  })

  const graceKey = new kms.Key(scope, 'GraceKey', {
    description: `Wraps the data keys sealing the grace children of ${scope.node.path}`,
    enableKeyRotation: true,
    policy: keyPolicy(['kms:GenerateDataKey', 'kms:Decrypt']),
    removalPolicy,
  })
  const dpopNonceKey = resolved.dpopNonce
    ? new kms.Key(scope, 'DpopNonceKey', {
        description: `Derives the DPoP nonce key of ${scope.node.path} (GenerateMac, once per container)`,
        keySpec: kms.KeySpec.HMAC_256,
        keyUsage: kms.KeyUsage.GENERATE_VERIFY_MAC,
        policy: keyPolicy(['kms:GenerateMac']),
        // Nothing depends on it for long: a new key costs each client one use_dpop_nonce round trip.
        removalPolicy: RemovalPolicy.DESTROY,
        pendingWindow: Duration.days(7),
      })
    : undefined

  // The active key, and a key a rotation deploy applied half-way may still (or already) sign with.
  const signingArns = resolved.signingKeyIds.map((id) => keyOf(id).keyArn)
  const grant: ServiceKeys['grant'] = {
    sign: (fn) => {
      // Exactly what functions/adapters/kms-signer.ts sends: a SHA-256 digest, the key's algorithm.
      fn.allow(['kms:Sign'], signingArns, {
        StringEquals: {
          'kms:SigningAlgorithm': KMS_SIGNING_ALGORITHMS[algorithm],
          'kms:MessageType': 'DIGEST',
        },
      })
      // The active key's `kid`, read at cold start.
      fn.allow(['kms:GetPublicKey'], signingArns)
    },
    // JWKS publishes every listed key. By tag too: a deploy that adds a key may start the
    // function that lists it before the policy naming it has reached IAM, and a deploy that
    // removes one may run the function that still lists it under the policy that no longer
    // names it. The tag reaches only public keys of this service's keys.
    publish: (fn) => {
      fn.allow(
        ['kms:GetPublicKey'],
        [activeKey, ...retiringKeys].map((key) => key.keyArn),
      )
      fn.allow(
        ['kms:GetPublicKey'],
        [Stack.of(scope).formatArn({ service: 'kms', resource: 'key', resourceName: '*' })],
        { StringEquals: { [`aws:ResourceTag/${SIGNING_KEY_TAG}`]: keyTag } },
      )
      Validations.of(fn.role).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*]',
        reason:
          "kms:GetPublicKey only, and only on keys tagged as this service's signing keys: a key is readable from the deploy that creates it until after the deploy that removes it, whatever order CloudFormation and IAM apply the changes in.",
      })
    },
    // Seals a rotation's grace child, and opens one for a grace replay.
    graceSeal: (fn) => fn.allow(['kms:GenerateDataKey', 'kms:Decrypt'], [graceKey.keyArn]),
    // Exactly what functions/adapters/dpop.ts sends to derive the nonce key.
    nonceMac: (fn) => {
      if (!dpopNonceKey) return
      fn.allow(['kms:GenerateMac'], [dpopNonceKey.keyArn], {
        StringEquals: { 'kms:MacAlgorithm': 'HMAC_SHA_256' },
      })
    },
  }
  return {
    signingKeys,
    activeKey,
    activeKeyAlias,
    retiringKeys,
    graceKey,
    ...(dpopNonceKey && { dpopNonceKey }),
    grant,
  }
}
