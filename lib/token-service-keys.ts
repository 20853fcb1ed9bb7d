import { Duration, RemovalPolicy, Stack, Tags, Token, Validations } from 'aws-cdk-lib'
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb'
import * as iam from 'aws-cdk-lib/aws-iam'
import * as kms from 'aws-cdk-lib/aws-kms'
import { Construct } from 'constructs'
import { itemKey } from '../functions/adapters/dynamodb/table.js'
import { KMS_SIGNING_ALGORITHMS } from '../functions/adapters/kms-signer.js'
import type { KmsUse } from '../functions/routes.js'
import {
  EnvelopeSigning,
  envelopeContextConditions,
  envelopeKeyName,
  keyPairSpec,
} from './envelope-signing.js'
import { grantStore } from './table-access.js'
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

/** What administering a multi-Region key needs besides: replicate it, promote a replica. */
export const MULTI_REGION_ADMIN_ACTIONS = ['kms:ReplicateKey', 'kms:UpdatePrimaryRegion'] as const

/**
 * A key policy that separates administration from use, as AWS recommends, instead of CDK's
 * default (the account root `kms:*`): one statement lets the account's IAM policies grant the
 * administration of the key, another only the uses its kind allows (`use`). So a role gets
 * exactly what its IAM policy names within each: the functions' roles use and never
 * administer; an operator's role may administer and, unless its policy says so, never use.
 */
export function keyPolicy(
  use: readonly string[],
  { multiRegion = false }: { readonly multiRegion?: boolean } = {},
): iam.PolicyDocument {
  const account = new iam.AccountRootPrincipal()
  // A multi-Region key's replicas are created by the deploy (`AWS::KMS::ReplicaKey` asks for
  // kms:ReplicateKey on the primary, which only its key policy can allow to IAM), and an
  // operator may have to promote a replica when the primary's region is lost.
  const admin = multiRegion
    ? [...KEY_ADMIN_ACTIONS, ...MULTI_REGION_ADMIN_ACTIONS].sort()
    : KEY_ADMIN_ACTIONS
  return new iam.PolicyDocument({
    statements: [
      new iam.PolicyStatement({
        sid: 'KeyAdministration',
        principals: [account],
        actions: [...admin],
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
  /** Every KMS signing key (`kms` mode), by its `id`. */
  readonly signingKeys: Readonly<Record<string, kms.IKey>>
  /** The active key when it is a KMS key; `undefined` when it is an envelope key. */
  readonly activeKey?: kms.IKey
  readonly activeKeyAlias?: kms.Alias
  /** The KMS keys that are listed but do not sign. */
  readonly retiringKeys: readonly kms.IKey[]
  /** The symmetric key wrapping the envelope keys' private keys, when a key is an envelope key. */
  readonly envelopeSigning?: EnvelopeSigning
  /** Outside the primary region, with an envelope key: the primary, where pairs are created. */
  readonly envelopeKeyPairRegion?: string
  /**
   * How the functions' environment names a key: its KMS key's ARN, or `envelope:<id>`
   * (SIGNING_KEY_ID, RETIRING_KEY_IDS).
   */
  readonly keyName: (id: string) => string
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
export function buildKeys(
  scope: Construct,
  resolved: ResolvedProps,
  table: dynamodb.ITable,
): ServiceKeys {
  const { algorithm, removalPolicy } = resolved
  const stackName = Stack.of(scope).stackName
  const aliasPrefix = `alias/${stackName}/${scope.node.id}`
  const keyTag = `${stackName}/${scope.node.id}`
  const signingKeys: Record<string, kms.IKey> = {}
  const isEnvelope = (id: string) => resolved.signingModes[id] === 'envelope'
  for (const spec of resolved.signingKeys) {
    // An envelope key is a pair in the table, wrapped by the envelope key: no KMS key of its own.
    if (isEnvelope(spec.id)) continue
    const description = `Signs the access tokens (${algorithm}) of ${scope.node.path}: key ${spec.id}`
    const primaryKey = resolved.regions?.primaryKeys?.[spec.id]
    const multiRegion =
      primaryKey !== undefined || resolved.regions?.multiRegionKeys.includes(spec.id) === true
    const policy = keyPolicy(['kms:Sign', 'kms:GetPublicKey'], { multiRegion })
    // With regions, another region's copy of the primary's multi-Region key: the same key
    // material and key id, so the same `kid` (docs/multi-region.md "Signing keys").
    const key: kms.IKey = primaryKey
      ? replicaKey(scope, `SigningKey-${spec.id}`, {
          primaryKeyArn: primaryKey.keyArn,
          description,
          keyPolicy: policy,
          removalPolicy,
          tags: [{ key: SIGNING_KEY_TAG, value: keyTag }],
        })
      : new kms.Key(scope, `SigningKey-${spec.id}`, {
          description,
          keySpec: algorithm === 'RS256' ? kms.KeySpec.RSA_2048 : kms.KeySpec.ECC_NIST_P256,
          keyUsage: kms.KeyUsage.SIGN_VERIFY,
          policy,
          removalPolicy,
          // Only a key added with regions: a key's MultiRegion cannot change in place.
          ...(multiRegion && { multiRegion: true }),
        })
    if (!primaryKey) Tags.of(key).add(SIGNING_KEY_TAG, keyTag)
    new kms.Alias(scope, `SigningKeyAlias-${spec.id}`, {
      aliasName: `${aliasPrefix}/${spec.id}`,
      targetKey: key,
    })
    signingKeys[spec.id] = key
  }
  const activeKey = signingKeys[resolved.activeKeyId]
  const retiringKeys = resolved.signingKeys
    .filter((spec) => spec.id !== resolved.activeKeyId && signingKeys[spec.id])
    .map((spec) => signingKeys[spec.id] as kms.IKey)
  // Follows the active key, so that operators can reach it by one stable name.
  const activeKeyAlias = activeKey
    ? new kms.Alias(scope, 'ActiveSigningKeyAlias', {
        aliasName: `${aliasPrefix}/active`,
        targetKey: activeKey,
      })
    : undefined
  // With regions, an envelope key added with them is wrapped under a multi-Region key (one pair
  // per key id, unwrapped in every region by its own copy); one added before, under the
  // single-Region key it was generated under (docs/multi-region.md "Envelope keys").
  const envelopeIds = resolved.signingKeys.filter((spec) => isEnvelope(spec.id)).map((s) => s.id)
  const multiRegionEnvelope = (id: string) =>
    resolved.regions?.multiRegionKeys.includes(id) === true
  const envelopeSigning =
    envelopeIds.length > 0
      ? new EnvelopeSigning(scope, 'EnvelopeSigning', {
          algorithm,
          owner: keyTag,
          removalPolicy,
          tag: [SIGNING_KEY_TAG, keyTag],
          singleRegion: envelopeIds.some((id) => !multiRegionEnvelope(id)),
          ...(envelopeIds.some(multiRegionEnvelope) && {
            multiRegion: {
              ...(resolved.regions?.primaryEnvelopeKey && {
                primaryKeyArn: resolved.regions.primaryEnvelopeKey.keyArn,
              }),
            },
          }),
        })
      : undefined
  const keyName = (id: string) => signingKeys[id]?.keyArn ?? envelopeKeyName(id)

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
  const signingArns = resolved.signingKeyIds.flatMap((id) => {
    const key = signingKeys[id]
    return key ? [key.keyArn] : []
  })
  const envelopeSigningIds = resolved.signingKeyIds.filter((id) => !signingKeys[id])
  const anyKeyOfTheAccount = Stack.of(scope).formatArn({
    service: 'kms',
    resource: 'key',
    resourceName: '*',
  })
  // In a region other than the primary, a pair this region's replica does not have yet is
  // read from, and created in (a conditional put), the primary's replica: one place decides
  // each key id's pair (docs/multi-region.md "Envelope keys"). Only the pairs' items.
  const keyPairRegion = envelopeKeyPairRegion(resolved)
  const grantKeyPairsInPrimary = (fn: TokenFunction) => {
    if (!keyPairRegion) return
    const primaryTable = Stack.of(scope).formatArn({
      service: 'dynamodb',
      region: keyPairRegion,
      resource: 'table',
      resourceName: resolved.tableName ?? table.tableName,
    })
    fn.allow(['dynamodb:GetItem', 'dynamodb:PutItem'], [primaryTable], {
      'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [itemKey.signingKey('*').pk] },
    })
  }
  const grant: ServiceKeys['grant'] = {
    sign: (fn) => {
      if (signingArns.length === 0) return
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
      const listed = Object.values(signingKeys).map((key) => key.keyArn)
      if (listed.length > 0) fn.allow(['kms:GetPublicKey'], listed)
      fn.allow(['kms:GetPublicKey'], [anyKeyOfTheAccount], {
        StringEquals: { [`aws:ResourceTag/${SIGNING_KEY_TAG}`]: keyTag },
      })
      // cdk-nag names the resource as the template has it: a pinned region, account and
      // partition (with the partition-literals flag of cdk.json) literally.
      const { region, account } = Stack.of(fn)
      const known = (value: string, pseudo: string) =>
        Token.isUnresolved(value) ? `<AWS::${pseudo}>` : value
      Validations.of(fn.role).acknowledge({
        id: `AwsSolutions-IAM5[Resource::arn:${known(Stack.of(fn).partition, 'Partition')}:kms:${known(region, 'Region')}:${known(account, 'AccountId')}:key/*]`,
        reason:
          "kms:GetPublicKey, and GenerateDataKeyPairWithoutPlaintext (which never yields a private key in plain), only on keys tagged as this service's signing keys: a key is usable from the deploy that creates it until after the deploy that removes it, whatever order CloudFormation and IAM apply the changes in.",
      })
    },
    // Envelope keys: unwrap (once per container) only the keys it may sign with, and generate
    // the pair of one no function has published yet; read and store their pairs.
    envelopeSign: (fn) => {
      if (!envelopeSigning) return
      envelopeSigning.grantSign(fn, envelopeSigningIds)
      grantStore(fn, table, ['findKeyPair', 'createKeyPair'])
      grantKeyPairsInPrimary(fn)
    },
    // Envelope keys' public keys are in the table: jwks reads them, and generates the pair of
    // a key it publishes first; it can never unwrap one. In every mode and by tag, as for
    // GetPublicKey: the deploy that adds the first envelope key may run the jwks function
    // that lists it under the policy from before, and that key is created by this deploy.
    // Only the envelope keys' items (their partition keys), never a session or a user.
    envelopePublish: (fn) => {
      fn.allow(['dynamodb:GetItem', 'dynamodb:PutItem'], [table.tableArn], {
        'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [itemKey.signingKey('*').pk] },
      })
      if (envelopeSigning) grantKeyPairsInPrimary(fn)
      fn.allow(['kms:GenerateDataKeyPairWithoutPlaintext'], [anyKeyOfTheAccount], {
        StringEquals: {
          [`aws:ResourceTag/${SIGNING_KEY_TAG}`]: keyTag,
          ...envelopeContextConditions(keyTag, 'any'),
          'kms:DataKeyPairSpec': keyPairSpec(algorithm),
        },
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
    ...(activeKey && { activeKey }),
    ...(activeKeyAlias && { activeKeyAlias }),
    retiringKeys,
    ...(envelopeSigning && { envelopeSigning }),
    ...(keyPairRegion && { envelopeKeyPairRegion: keyPairRegion }),
    keyName,
    graceKey,
    ...(dpopNonceKey && { dpopNonceKey }),
    grant,
  }
}

/**
 * In a region other than the primary, with an envelope key: the primary region, where each
 * envelope key's pair is created (`ENVELOPE_KEY_PAIR_REGION`); otherwise undefined.
 */
export function envelopeKeyPairRegion(resolved: ResolvedProps): string | undefined {
  const { regions } = resolved
  if (!regions?.primaryKeys) return undefined
  const envelope = resolved.signingKeys.some(
    (spec) => resolved.signingModes[spec.id] === 'envelope',
  )
  return envelope ? regions.all[0] : undefined
}

/**
 * A replica of a multi-Region key (`AWS::KMS::ReplicaKey`) as a key of this stack: its
 * construct id (hence logical id) is the one the key has in the primary region's stack.
 */
export function replicaKey(
  scope: Construct,
  id: string,
  props: {
    readonly primaryKeyArn: string
    readonly description: string
    readonly keyPolicy: iam.PolicyDocument
    readonly removalPolicy: RemovalPolicy
    readonly tags?: readonly { key: string; value: string }[]
  },
): kms.IKey {
  // `<id>/Resource`, as a kms.Key's resource: the same logical id as the primary key's.
  const replica = new kms.CfnReplicaKey(new Construct(scope, id), 'Resource', {
    primaryKeyArn: props.primaryKeyArn,
    description: props.description,
    keyPolicy: props.keyPolicy,
    ...(props.tags && { tags: [...props.tags] }),
  })
  replica.applyRemovalPolicy(props.removalPolicy)
  return kms.Key.fromKeyArn(scope, `${id}-Ref`, replica.attrArn)
}
