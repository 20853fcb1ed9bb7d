/**
 * The storage ports' contracts (test/support/store-contract.ts) against their
 * real adapters, functions/adapters/dynamodb/, on DynamoDB Local: one fresh
 * table per port.
 */
import { DynamoLoginThrottle } from '../../functions/adapters/dynamodb/login-throttle.js'
import { DynamoSessions } from '../../functions/adapters/dynamodb/sessions.js'
import { DynamoUsers } from '../../functions/adapters/dynamodb/users.js'
import { createTestTable } from '../support/dynamo.js'
import {
  loginAttemptsContract,
  type Stores,
  sessionStoreContract,
  userStoreContract,
} from '../support/store-contract.js'

async function dynamoStores(): Promise<Stores> {
  const { client, tableName } = await createTestTable()
  return {
    sessions: new DynamoSessions(client, tableName),
    users: new DynamoUsers(client, tableName),
    loginAttempts: new DynamoLoginThrottle(client, tableName),
  }
}

userStoreContract('DynamoUsers on DynamoDB Local', dynamoStores)
sessionStoreContract('DynamoSessions on DynamoDB Local', dynamoStores)
loginAttemptsContract('DynamoLoginThrottle on DynamoDB Local', dynamoStores)
