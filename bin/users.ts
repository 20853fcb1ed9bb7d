/**
 * `npm run users -- <command> <username> [options]`: manage users in the local
 * table (DynamoDB Local of a running `npm start`) or in a deployed table.
 *
 *   add <username> [--role <role>]...   password read from stdin
 *   disable <username>                  also ends all the user's sessions
 *   enable <username>
 *
 * Options: --table <name> (a deployed table, with the usual AWS credentials and
 * region), --endpoint <url> (another DynamoDB endpoint).
 */
import { parseArgs } from 'node:util'
import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { DynamoSessions } from '../functions/adapters/dynamodb/sessions.js'
import { DynamoUsers } from '../functions/adapters/dynamodb/users.js'
import { systemClock } from '../functions/core/clock.js'
import { addUser, disableUser, enableUser } from '../functions/core/users.js'
import { LOCAL_TABLE, loadLocalConfig } from '../local/config.js'

const USAGE =
  'usage: npm run users -- add|disable|enable <username> [--role <role>]... [--table <name>] [--endpoint <url>]'

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('password: ')
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '')
}

async function main() {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      role: { type: 'string', multiple: true, default: [] },
      table: { type: 'string' },
      endpoint: { type: 'string' },
    },
  })
  const [command, username] = positionals
  if (!command || !username || positionals.length > 2) throw new Error(USAGE)
  const local = values.table === undefined
  const endpoint =
    values.endpoint ?? (local ? `http://127.0.0.1:${loadLocalConfig().dynamodbPort}` : undefined)
  const client = new DynamoDBClient({
    ...(endpoint ? { endpoint } : {}),
    // DynamoDB Local accepts any credentials; a deployed table uses the usual chain.
    ...(local
      ? { region: 'local', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
      : {}),
  })
  const tableName = values.table ?? LOCAL_TABLE
  const users = new DynamoUsers(client, tableName)
  const sessions = new DynamoSessions(client, tableName)
  switch (command) {
    case 'add': {
      const user = await addUser(users, systemClock, {
        username,
        password: await readStdin(),
        roles: values.role,
      })
      console.log(
        `added ${user.username} (sub ${user.sub}, roles: ${user.roles.join(', ') || 'none'})`,
      )
      break
    }
    case 'disable':
      console.log(
        `disabled ${username}; ended ${await disableUser({ users, sessions }, systemClock, username)} session(s)`,
      )
      break
    case 'enable':
      await enableUser(users, username)
      console.log(`enabled ${username}`)
      break
    default:
      throw new Error(USAGE)
  }
}

main().catch((error) => {
  console.error(`users: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
})
