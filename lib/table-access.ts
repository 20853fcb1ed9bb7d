import { Stack } from 'aws-cdk-lib'
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb'
import { GSI1, itemKey } from '../functions/adapters/dynamodb/table.js'
import type { StoreMethod } from '../functions/routes.js'
import type { TokenFunction } from './token-function.js'
import { TABLE_KEY_USE } from './token-service-table.js'

/**
 * The items of the table by their partition key (functions/adapters/dynamodb/table.ts),
 * as `dynamodb:LeadingKeys` patterns. A username claim and the failed-logins record
 * share `USERNAME#<name>`: IAM tells partitions apart, not items within one.
 */
export const PARTITIONS = {
  user: itemKey.user('*').pk,
  session: itemKey.session('*').pk,
  username: itemKey.failedLogins('*').pk,
  event: itemKey.event('*').pk,
  dpop: itemKey.dpopProof('*', '*').pk,
  graceKey: itemKey.graceKey('*').pk,
  signingKey: itemKey.signingKey('*').pk,
  region: itemKey.region('*').pk,
} as const
export type Partition = keyof typeof PARTITIONS

/**
 * The DynamoDB actions behind each store method (the ports in
 * functions/core/ports.ts, on DynamoDB in functions/adapters/dynamodb/:
 * sessions.ts, users.ts, login-throttle.ts, dpop-replay.ts, grace-keys.ts, signing-keys.ts),
 * split by what they touch: item actions on the table, each with the partitions it reaches
 * (granted under `dynamodb:LeadingKeys`), and queries on the one GSI. A transaction is
 * authorised per item action, so `TransactWriteItems` appears as the Put, Update and
 * ConditionCheck it holds: a write that carries security events is a transaction with one
 * Put per event (functions/adapters/dynamodb/outbox.ts). The grace keys' directory and the
 * envelope signing keys are adapters' own stores, listed too.
 * Every port method has an entry, so that a renamed method fails to compile here.
 */
export const STORE_ACTIONS = {
  findUserByUsername: { index: ['dynamodb:Query'] },
  loadLogin: { index: ['dynamodb:Query'] },
  recordLoginFailure: {
    table: { 'dynamodb:UpdateItem': ['username'], 'dynamodb:PutItem': ['event'] },
  },
  countLoginAttempt: { table: { 'dynamodb:UpdateItem': ['username'] } },
  claimLoginAttempt: { table: { 'dynamodb:UpdateItem': ['username'] } },
  clearLoginFailures: { table: { 'dynamodb:UpdateItem': ['username'] } },
  giveBackLoginAttempt: { table: { 'dynamodb:UpdateItem': ['username'] } },
  // The session and the user, in one read.
  loadRefreshState: { table: { 'dynamodb:BatchGetItem': ['session', 'user'] } },
  // A retired token's record, in its session's partition.
  wasRetired: { table: { 'dynamodb:GetItem': ['session'] } },
  loadSessionState: { table: { 'dynamodb:BatchGetItem': ['session', 'user'] } },
  getSession: { table: { 'dynamodb:GetItem': ['session'] } },
  // The session, its guard (the user, only checked) and its event in one transaction; then
  // its pointer (PutItem), which lives in the user's partition: IAM tells partitions apart,
  // not items, so the function that creates sessions may put into USER#.
  createSession: {
    table: {
      'dynamodb:PutItem': ['session', 'event', 'user'],
      'dynamodb:ConditionCheckItem': ['user'],
    },
  },
  // The retired token's record, then the session.
  recordRetired: { table: { 'dynamodb:PutItem': ['session'] } },
  rotate: { table: { 'dynamodb:UpdateItem': ['session'] } },
  revokeSession: {
    table: { 'dynamodb:UpdateItem': ['session'], 'dynamodb:PutItem': ['event'] },
  },
  // The user's pointers (Query) and their sessions (BatchGetItem); sessions written
  // before issue 17 through gsi1.
  listSessions: {
    table: { 'dynamodb:Query': ['user'], 'dynamodb:BatchGetItem': ['session'] },
    index: ['dynamodb:Query'],
  },
  updateUser: { table: { 'dynamodb:UpdateItem': ['user'], 'dynamodb:PutItem': ['event'] } },
  createUser: { table: { 'dynamodb:PutItem': ['user', 'username'] } },
  appendEvent: { table: { 'dynamodb:PutItem': ['event'] } },
  appendEventOnce: { table: { 'dynamodb:PutItem': ['event'] } },
  // A conditional update of the user, in one transaction with its event (PutItem); after a
  // lost condition, a consistent read of its hash.
  changePassword: {
    table: {
      'dynamodb:UpdateItem': ['user'],
      'dynamodb:PutItem': ['event'],
      'dynamodb:GetItem': ['user'],
    },
  },
  recordProof: { table: { 'dynamodb:PutItem': ['dpop'] } },
  // The grace keys' directory (functions/adapters/dynamodb/grace-keys.ts).
  saveGraceKey: { table: { 'dynamodb:PutItem': ['graceKey'] } },
  findGraceKey: { table: { 'dynamodb:GetItem': ['graceKey'] } },
  // Envelope signing keys (functions/adapters/dynamodb/signing-keys.ts): a conditional put,
  // read back when another container's pair was stored first.
  findKeyPair: { table: { 'dynamodb:GetItem': ['signingKey'] } },
  createKeyPair: {
    table: { 'dynamodb:PutItem': ['signingKey'], 'dynamodb:GetItem': ['signingKey'] },
  },
  // The operators' region switch (functions/adapters/dynamodb/regions.ts): the token
  // function reads it; only `npm run regions`, outside Lambda, writes it.
  findRegionDeclaration: { table: { 'dynamodb:GetItem': ['region'] } },
  declareRegion: { table: { 'dynamodb:PutItem': ['region'] } },
} as const satisfies Record<
  StoreMethod,
  {
    table?: Readonly<Partial<Record<string, readonly Partition[]>>>
    index?: readonly string[]
  }
>

export type { StoreMethod }

/**
 * The table grants of `methods`: each action with the partitions it may reach, sorted.
 */
export function tableGrants(methods: readonly StoreMethod[]): Map<string, Partition[]> {
  const onTable = new Map<string, Set<Partition>>()
  for (const method of methods) {
    const table: Readonly<Partial<Record<string, readonly Partition[]>>> =
      (STORE_ACTIONS[method] as { table?: Readonly<Partial<Record<string, readonly Partition[]>>> })
        .table ?? {}
    for (const [action, partitions] of Object.entries(table)) {
      const set = onTable.get(action) ?? new Set<Partition>()
      for (const partition of partitions ?? []) set.add(partition)
      onTable.set(action, set)
    }
  }
  return new Map(
    [...onTable].sort(([a], [b]) => a.localeCompare(b)).map(([a, s]) => [a, [...s].sort()]),
  )
}

/**
 * Grants `fn` exactly the DynamoDB actions that `methods` perform: item actions on the
 * table's ARN, each only on the partitions it needs (`dynamodb:LeadingKeys`, so that
 * `token` reads users and never writes one, and `login` updates only `USERNAME#`, where
 * the failed-logins record lives, and puts into `USER#` only a new session's pointer); queries on the GSI's ARN; never `index/*`, never a
 * wildcard action. Actions that reach the same partitions share one statement.
 */
export function grantStore(
  fn: TokenFunction,
  table: dynamodb.ITable,
  methods: readonly StoreMethod[],
): void {
  const byPartitions = new Map<string, string[]>()
  for (const [action, partitions] of tableGrants(methods)) {
    const key = partitions.join(',')
    byPartitions.set(key, [...(byPartitions.get(key) ?? []), action])
  }
  for (const [key, actions] of byPartitions) {
    const partitions = key.split(',') as Partition[]
    fn.allow(actions, [table.tableArn], {
      'ForAllValues:StringLike': {
        'dynamodb:LeadingKeys': partitions.map((partition) => PARTITIONS[partition]),
      },
    })
  }
  const onIndex = new Set<string>()
  for (const method of methods) {
    const { index = [] } = STORE_ACTIONS[method] as { index?: readonly string[] }
    for (const action of index) onIndex.add(action)
  }
  fn.allow([...onIndex].sort(), [`${table.tableArn}/index/${GSI1}`])
  if (methods.length > 0) grantTableKey(fn, table)
}

/** With a customer-managed table key: its use, through DynamoDB only. */
export function grantTableKey(fn: TokenFunction, table: dynamodb.ITable): void {
  if (!table.encryptionKey) return
  fn.allow([...TABLE_KEY_USE], [table.encryptionKey.keyArn], {
    StringEquals: { 'kms:ViaService': `dynamodb.${Stack.of(table).region}.amazonaws.com` },
  })
}
