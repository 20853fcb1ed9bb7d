import { ArnFormat, Stack } from 'aws-cdk-lib'
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb'
import * as iam from 'aws-cdk-lib/aws-iam'
import type { Construct } from 'constructs'
import { HTTP_FUNCTIONS, type HttpFunction, KEY_PAIR_METHODS } from '../functions/routes.js'
import type { SettingName } from '../functions/settings.js'
import { DEFAULTS } from './defaults.js'
import { grantStore } from './table-access.js'
import { functionEnvironment, TokenFunction } from './token-function.js'
import type { ServiceKeys } from './token-service-keys.js'
import type { ResolvedProps } from './token-service-props.js'

/** What the function environments are made of: the issuer, and the resources they name. */
export interface FunctionParts {
  readonly issuer: string
  /** Behind the edge: the secret header's value, and the address clients call. */
  readonly edge?: { readonly originSecret: string; readonly url: string }
  readonly table: dynamodb.ITable
  readonly keys: ServiceKeys
}

/**
 * The value of every setting the stack sets; each function's environment takes the
 * ones it reads (functions/settings.ts).
 */
export function functionSettings(
  resolved: ResolvedProps,
  { issuer, table, keys, edge }: FunctionParts,
): Partial<Record<SettingName, string>> {
  return {
    ...resolved.tuning,
    ISSUER: issuer,
    ...(edge && { EDGE_ORIGIN_SECRET: edge.originSecret, REQUEST_ORIGIN: edge.url }),
    CLIENTS: JSON.stringify(resolved.clients),
    TABLE_NAME: table.tableName,
    SIGNING_KEY_ID: keys.keyName(resolved.activeKeyId),
    GRACE_KEY_ID: keys.graceKey.keyArn,
    RETIRING_KEY_IDS: resolved.signingKeys
      .filter((spec) => spec.id !== resolved.activeKeyId)
      .map((spec) => keys.keyName(spec.id))
      .join(','),
    ...(keys.envelopeSigning && {
      ...(keys.envelopeSigning.key && { ENVELOPE_KEY_ID: keys.envelopeSigning.key.keyArn }),
      ...(keys.envelopeSigning.multiRegionKey && {
        ENVELOPE_MULTI_REGION_KEY_ID: keys.envelopeSigning.multiRegionKey.keyArn,
      }),
      SIGNING_KEY_OWNER: resolved.keyOwner,
      // Outside the primary: where a pair not replicated here yet is read and created.
      ...(keys.envelopeKeyPairRegion && { ENVELOPE_KEY_PAIR_REGION: keys.envelopeKeyPairRegion }),
    }),
    SIGNING_ALG: resolved.algorithm,
    ...(keys.dpopNonceKey && { DPOP_NONCE_KEY_ID: keys.dpopNonceKey.keyArn }),
    // With several regions, the security events written here name this region (events once),
    // its logins home their sessions here, and a refresh homed elsewhere goes there.
    ...(resolved.regions && {
      OUTBOX_REGION: Stack.of(table).region,
      REGIONS: resolved.regions.all.join(','),
      HOME_REGION: Stack.of(table).region,
      FAILOVER: resolved.regions.failover ?? 'relogin',
    }),
    AWS_CALL_TIMEOUT_MS: String(DEFAULTS.awsCallTimeout.toMilliseconds()),
    AWS_MAX_ATTEMPTS: String(DEFAULTS.awsMaxAttempts),
  }
}

/**
 * With several regions, the name of a function that forwards to the session's home (the
 * token and revoke functions), the same in every region (each region's stack has the
 * CloudFormation name `stackName`): another region forwards to it by this name
 * (docs/multi-region.md "Each session has a home").
 */
export const homeFunctionName = (stack: Stack, name: HomeRouted): string =>
  `${stack.stackName}-${name}`

/** The functions that forward a request to the session's home region. */
type HomeRouted = 'token' | 'revoke' | 'sessions'
const HOME_ROUTED: readonly HttpFunction[] = ['token', 'revoke', 'sessions']

/**
 * Every HTTP function of functions/routes.ts in `scope` (`Login`, `Token`, ...), each
 * with its environment and exactly the grants its row lists (`store`, `kms`).
 */
export function buildFunctions(
  scope: Construct,
  resolved: ResolvedProps,
  settings: Partial<Record<SettingName, string>>,
  { table, keys }: FunctionParts,
): Record<HttpFunction, TokenFunction> {
  // The jwks function reads the table only for envelope keys' public keys.
  const settingsOf = (name: HttpFunction) =>
    name === 'jwks' && !keys.envelopeSigning
      ? { ...settings, TABLE_NAME: undefined }
      : homeRouted(name) && resolved.regions
        ? { ...settings, HOME_FUNCTION_NAME: homeFunctionName(Stack.of(scope), name) }
        : settings
  const newHttpFunction = (name: HttpFunction) => {
    const fn = new TokenFunction(scope, `${name[0]?.toUpperCase()}${name.slice(1)}`, {
      name,
      environment: functionEnvironment(name, settingsOf(name)),
      logRetention: resolved.logRetention,
      removalPolicy: resolved.removalPolicy,
      // Another region forwards to it by this name (docs/multi-region.md "Forwarding").
      ...(homeRouted(name) &&
        resolved.regions && { functionName: homeFunctionName(Stack.of(scope), name) }),
    })
    if (homeRouted(name) && resolved.regions) grantForwarding(fn, name, resolved.regions.all)
    // Least privilege from the function's row: its store methods, its uses of the keys.
    const { store, kms } = HTTP_FUNCTIONS[name]
    // Envelope keys' pairs come with the key uses that need them (lib/token-service-keys.ts).
    grantStore(
      fn,
      table,
      store.filter((method) => !KEY_PAIR_METHODS.includes(method)),
    )
    for (const use of kms) keys.grant[use](fn)
    return fn
  }
  const names = Object.keys(HTTP_FUNCTIONS) as HttpFunction[]
  return Object.fromEntries(names.map((name) => [name, newHttpFunction(name)])) as Record<
    HttpFunction,
    TokenFunction
  >
}

const homeRouted = (name: HttpFunction): name is HomeRouted => HOME_ROUTED.includes(name)

/** A home-routed function may invoke its copies in the other regions: what it forwards. */
function grantForwarding(fn: TokenFunction, name: HomeRouted, regions: readonly string[]): void {
  const stack = Stack.of(fn)
  const others = regions.filter((region) => region !== stack.region)
  fn.role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: ['lambda:InvokeFunction'],
      resources: others.map((region) =>
        stack.formatArn({
          service: 'lambda',
          region,
          resource: 'function',
          resourceName: homeFunctionName(stack, name),
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      ),
    }),
  )
}
