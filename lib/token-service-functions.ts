import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb'
import type { Construct } from 'constructs'
import { HTTP_FUNCTIONS, type HttpFunction } from '../functions/routes.js'
import type { SettingName } from '../functions/settings.js'
import { DEFAULTS } from './defaults.js'
import { grantStore, type StoreMethod } from './table-access.js'
import { functionEnvironment, TokenFunction } from './token-function.js'
import type { KmsUse, ServiceKeys } from './token-service-keys.js'
import type { ResolvedProps } from './token-service-props.js'

/** The DynamoDB calls each function makes (see lib/table-access.ts for the actions). */
export const STORE_USE: Readonly<Partial<Record<HttpFunction, readonly StoreMethod[]>>> = {
  // One Query finds the user while the attempt takes its turn (counted up front, or a
  // back-off slot claimed); success clears the count and creates the session guarded by
  // the user, with its event. A refusal that changes nothing else writes its event alone:
  // login.throttled, or login.failed (the turn already counted it).
  login: [
    'loadLogin',
    'countLoginAttempt',
    'claimLoginAttempt',
    'clearLoginFailures',
    'createSession',
    'appendEvent',
    // A session whose token could not be sent (signing failed) is revoked at once.
    'revokeSession',
    // A DPoP proof's single use.
    'recordProof',
  ],
  // One batched read (and a DPoP proof's single use), then the rotation; a lost race
  // re-reads the session; reuse revokes it, or, for a client in report mode, writes its
  // event alone.
  token: [
    'loadRefreshState',
    'recordProof',
    'getSession',
    'rotate',
    'revokeSession',
    'appendEvent',
  ],
  revoke: ['loadRefreshState', 'revokeSession'],
  // List (with the user, to drop sessions a logout everywhere voided), end one, end all
  // (void the user's sessions, then revoke each).
  sessions: ['listSessions', 'loadSessionState', 'getSession', 'revokeSession', 'updateUser'],
  // The caller's session and user in one read, the username's failed logins (the login
  // back-off, counted and claimed as at login), the change (one transaction: the user's
  // hash and sessions_valid_after, the kept session, password.changed), then each other
  // session revoked with its event. A refused check writes its event alone.
  password: [
    'loadSessionState',
    'countLoginAttempt',
    'claimLoginAttempt',
    'clearLoginFailures',
    'changePassword',
    'appendEvent',
    'listSessions',
    'revokeSession',
  ],
}

/** What each function does with the keys: only login and token sign, only token seals. */
const KMS_USE: Readonly<Partial<Record<HttpFunction, readonly KmsUse[]>>> = {
  login: ['sign', 'nonceMac'],
  token: ['sign', 'nonceMac', 'graceSeal'],
  jwks: ['publish'],
}

/** What the function environments are made of: the issuer, and the resources they name. */
export interface FunctionParts {
  readonly issuer: string
  readonly table: dynamodb.ITable
  readonly keys: ServiceKeys
}

/**
 * The value of every setting the stack sets; each function's environment takes the
 * ones it reads (functions/settings.ts).
 */
export function functionSettings(
  resolved: ResolvedProps,
  { issuer, table, keys }: FunctionParts,
): Partial<Record<SettingName, string>> {
  return {
    ...resolved.tuning,
    ISSUER: issuer,
    CLIENTS: JSON.stringify(resolved.clients),
    TABLE_NAME: table.tableName,
    SIGNING_KEY_ID: keys.activeKey.keyArn,
    GRACE_KEY_ID: keys.graceKey.keyArn,
    RETIRING_KEY_IDS: keys.retiringKeys.map((key) => key.keyArn).join(','),
    SIGNING_ALG: resolved.algorithm,
    ...(keys.dpopNonceKey && { DPOP_NONCE_KEY_ID: keys.dpopNonceKey.keyArn }),
    AWS_CALL_TIMEOUT_MS: String(DEFAULTS.awsCallTimeout.toMilliseconds()),
    AWS_MAX_ATTEMPTS: String(DEFAULTS.awsMaxAttempts),
  }
}

/**
 * Every HTTP function of functions/routes.ts in `scope` (`Login`, `Token`, ...), each
 * with its environment and exactly the grants its row lists: least privilege, per function.
 */
export function buildFunctions(
  scope: Construct,
  resolved: ResolvedProps,
  settings: Partial<Record<SettingName, string>>,
  { table, keys }: FunctionParts,
): Record<HttpFunction, TokenFunction> {
  const newHttpFunction = (name: HttpFunction) => {
    const fn = new TokenFunction(scope, `${name[0]?.toUpperCase()}${name.slice(1)}`, {
      name,
      environment: functionEnvironment(name, settings),
      logRetention: resolved.logRetention,
      removalPolicy: resolved.removalPolicy,
    })
    grantStore(fn, table, STORE_USE[name] ?? [])
    for (const use of KMS_USE[name] ?? []) keys.grant[use](fn)
    return fn
  }
  const names = Object.keys(HTTP_FUNCTIONS) as HttpFunction[]
  return Object.fromEntries(names.map((name) => [name, newHttpFunction(name)])) as Record<
    HttpFunction,
    TokenFunction
  >
}
