/**
 * The storage ports' contracts (test/support/store-contract.ts) against their
 * real adapters, functions/adapters/dynamodb/, on DynamoDB Local: one fresh
 * table per port.
 */
import { DynamoLoginThrottle } from '../../functions/adapters/dynamodb/login-throttle.js'
import { DynamoOutbox } from '../../functions/adapters/dynamodb/outbox.js'
import { DynamoSessions } from '../../functions/adapters/dynamodb/sessions.js'
import { DynamoUsers } from '../../functions/adapters/dynamodb/users.js'
import { createTestTable } from '../support/dynamo.js'
import { items } from '../support/items.js'
import {
  type EventStores,
  loginAttemptsContract,
  type Stores,
  securityEventsContract,
  sessionStoreContract,
  userStoreContract,
} from '../support/store-contract.js'

async function dynamoStores(): Promise<Stores> {
  const { client, tableName } = await createTestTable()
  return {
    sessions: new DynamoSessions(client, tableName),
    users: new DynamoUsers(client, tableName),
    loginAttempts: new DynamoLoginThrottle(client, tableName),
    failedLogins: (username) => items(client, tableName).failedLogins(username),
  }
}

async function dynamoEventStores(): Promise<EventStores> {
  const { client, tableName } = await createTestTable()
  return {
    sessions: new DynamoSessions(client, tableName),
    users: new DynamoUsers(client, tableName),
    loginAttempts: new DynamoLoginThrottle(client, tableName),
    failedLogins: (username) => items(client, tableName).failedLogins(username),
    outbox: new DynamoOutbox(client, tableName),
    anotherOutbox: () => new DynamoOutbox(client, tableName),
    events: () => items(client, tableName).events(),
  }
}

userStoreContract('DynamoUsers on DynamoDB Local', dynamoStores)
sessionStoreContract('DynamoSessions on DynamoDB Local', dynamoStores)
loginAttemptsContract('DynamoLoginThrottle on DynamoDB Local', dynamoStores)
securityEventsContract('the DynamoDB stores and DynamoOutbox on DynamoDB Local', dynamoEventStores)
