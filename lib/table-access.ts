import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb'
import { GSI1 } from '../functions/adapters/dynamodb/table.js'
import type { StoreMethod } from '../functions/routes.js'
import type { TokenFunction } from './token-function.js'

/**
 * The DynamoDB actions behind each store method (the ports in
 * functions/core/ports.ts, on DynamoDB in functions/adapters/dynamodb/:
 * sessions.ts, users.ts, login-throttle.ts, dpop-replay.ts), split by what they touch: the
 * table or the one GSI. A transaction is authorised per item action, so
 * `TransactWriteItems` appears as the Put, Update and ConditionCheck it holds: a
 * write that carries security events is a transaction with one Put per event
 * (functions/adapters/dynamodb/outbox.ts). The grace keys' directory
 * (functions/adapters/kms-grace-keys.ts) is an adapter's own store, listed too.
 * Every port method has an entry, so that a renamed method fails to compile here.
 */
export const STORE_ACTIONS = {
  findUserByUsername: { index: ['dynamodb:Query'] },
  loadLogin: { index: ['dynamodb:Query'] },
  recordLoginFailure: { table: ['dynamodb:UpdateItem', 'dynamodb:PutItem'] },
  countLoginAttempt: { table: ['dynamodb:UpdateItem'] },
  claimLoginAttempt: { table: ['dynamodb:UpdateItem'] },
  clearLoginFailures: { table: ['dynamodb:UpdateItem'] },
  giveBackLoginAttempt: { table: ['dynamodb:UpdateItem'] },
  loadRefreshState: { table: ['dynamodb:BatchGetItem'] },
  wasRetired: { table: ['dynamodb:GetItem'] },
  loadSessionState: { table: ['dynamodb:BatchGetItem'] },
  getSession: { table: ['dynamodb:GetItem'] },
  // The session, its guard and its event in one transaction; then its pointer (PutItem).
  createSession: { table: ['dynamodb:PutItem', 'dynamodb:ConditionCheckItem'] },
  // The retired token's record, then the session.
  recordRetired: { table: ['dynamodb:PutItem'] },
  rotate: { table: ['dynamodb:UpdateItem'] },
  revokeSession: { table: ['dynamodb:UpdateItem', 'dynamodb:PutItem'] },
  // The user's pointers (Query) and their sessions (BatchGetItem); sessions written
  // before issue 17 through gsi1.
  listSessions: { table: ['dynamodb:Query', 'dynamodb:BatchGetItem'], index: ['dynamodb:Query'] },
  updateUser: { table: ['dynamodb:UpdateItem', 'dynamodb:PutItem'] },
  createUser: { table: ['dynamodb:PutItem'] },
  appendEvent: { table: ['dynamodb:PutItem'] },
  appendEventOnce: { table: ['dynamodb:PutItem'] },
  // A conditional update of the user, in one transaction with its event (PutItem); after a
  // lost condition, a consistent read of its hash.
  changePassword: { table: ['dynamodb:UpdateItem', 'dynamodb:PutItem', 'dynamodb:GetItem'] },
  recordProof: { table: ['dynamodb:PutItem'] },
  // The grace keys' directory (functions/adapters/dynamodb/grace-keys.ts).
  saveGraceKey: { table: ['dynamodb:PutItem'] },
  findGraceKey: { table: ['dynamodb:GetItem'] },
  // Envelope signing keys (functions/adapters/dynamodb/signing-keys.ts): a conditional put,
  // read back when another container's pair was stored first.
  findKeyPair: { table: ['dynamodb:GetItem'] },
  createKeyPair: { table: ['dynamodb:PutItem', 'dynamodb:GetItem'] },
} as const satisfies Record<StoreMethod, { table?: readonly string[]; index?: readonly string[] }>

export type { StoreMethod }

/**
 * Grants `fn` exactly the DynamoDB actions that `methods` perform: item actions
 * on the table's ARN, queries on the GSI's ARN; never `index/*`, never a wildcard.
 */
export function grantStore(
  fn: TokenFunction,
  table: dynamodb.ITable,
  methods: readonly StoreMethod[],
): void {
  const onTable = new Set<string>()
  const onIndex = new Set<string>()
  for (const method of methods) {
    const actions: { table?: readonly string[]; index?: readonly string[] } = STORE_ACTIONS[method]
    for (const action of actions.table ?? []) onTable.add(action)
    for (const action of actions.index ?? []) onIndex.add(action)
  }
  fn.allow([...onTable].sort(), [table.tableArn])
  fn.allow([...onIndex].sort(), [`${table.tableArn}/index/${GSI1}`])
}
