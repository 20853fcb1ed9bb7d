/**
 * `npm run users -- <command> <username> [options]`: manage users in the local
 * table (DynamoDB Local of a running `npm start`) or in a deployed table.
 * `npm run users -- --help` prints the commands and options.
 */
import { parseArgs } from 'node:util'
import { DynamoSessions } from '../functions/adapters/dynamodb/sessions.js'
import { DynamoUsers } from '../functions/adapters/dynamodb/users.js'
import { passwordPolicy } from '../functions/adapters/password-policy.js'
import { loadBreachCheck } from '../functions/config.js'
import { systemClock } from '../functions/core/clock.js'
import { addUser, disableUser, enableUser, setPassword } from '../functions/core/users.js'
import { assertAwsAccess, explain, openTable } from './table-cli.js'

const USAGE =
  'usage: npm run users -- add|set-password|disable|enable <username> [--role <role>]... [--table <name>] [--endpoint <url>]'

const HELP = `${USAGE}

Commands:
  add <username> [--role <role>]...   add a user; the password is read from stdin
                                      (typed twice at a terminal, it is not shown;
                                      never as an argument)
  set-password <username>             set a user's password and end all their sessions;
                                      the password is read as for add
  disable <username>                  disable a user and end all their sessions
  enable <username>                   enable a disabled user again

Options:
  --table <name>     a deployed table, with the usual AWS credentials and region
                     (default: the local table of a running \`npm start\`)
  --endpoint <url>   another DynamoDB endpoint
                     (default for the local table: DynamoDB Local on DYNAMODB_PORT)
  -h, --help         show this help
`

/**
 * The password: typed twice at a terminal without echo, else everything piped to stdin
 * (one trailing newline dropped). Never from argv: see `--password` below.
 */
async function readPassword(): Promise<string> {
  const stdin = process.stdin
  if (!stdin.isTTY) {
    const chunks: Buffer[] = []
    for await (const chunk of stdin) chunks.push(chunk as Buffer)
    const password = Buffer.concat(chunks)
      .toString('utf8')
      .replace(/\r?\n$/, '')
    if (password === '') {
      throw new Error(
        "nothing was read from standard input: pipe the password in (echo -n '<password>' | npm run users -- ...) or run the command at a terminal",
      )
    }
    return password
  }
  const password = await prompt('password: ')
  if ((await prompt('password again: ')) !== password) {
    throw new Error('the two passwords differ; nothing was changed')
  }
  return password
}

/** One line typed at the terminal, not shown. */
function prompt(question: string): Promise<string> {
  const stdin = process.stdin
  // Raw mode turns the terminal's echo off; the line editing it also turns off is done here.
  stdin.setRawMode(true)
  stdin.setEncoding('utf8')
  process.stderr.write(question)
  return new Promise((resolve, reject) => {
    let password: string[] = []
    const finish = (error?: Error) => {
      stdin.off('data', onData)
      stdin.setRawMode(false)
      stdin.pause()
      process.stderr.write('\n')
      if (error) reject(error)
      else resolve(password.join(''))
    }
    const onData = (chunk: string) => {
      for (const char of chunk) {
        if (char === '\r' || char === '\n' || char === '\u0004') return finish()
        if (char === '\u0003') return finish(new Error('cancelled'))
        if (char === '\u007f' || char === '\b') password = password.slice(0, -1)
        else password.push(char)
      }
    }
    stdin.on('data', onData)
    stdin.resume() // paused by the previous prompt
  })
}

async function main() {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      role: { type: 'string', multiple: true, default: [] },
      table: { type: 'string' },
      endpoint: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      // Declared only to be refused with a reason, rather than as an unknown option.
      password: { type: 'string' },
    },
  })
  if (values.password !== undefined) {
    throw new Error(
      '--password is refused: a password never goes on the command line, where the shell history and ps keep it. Pipe it on standard input, or type it at the prompt',
    )
  }
  if (values.help) {
    process.stdout.write(HELP)
    return
  }
  const [command, username] = positionals
  if (!command || !username || positionals.length > 2) throw new Error(USAGE)
  const target = openTable(values)
  const stores = {
    users: new DynamoUsers(target.client, target.table),
    sessions: new DynamoSessions(target.client, target.table),
  }
  try {
    await assertAwsAccess(target)
    await run(stores, command, username, values.role)
  } catch (error) {
    throw new Error(explain(error, target), { cause: error })
  }
}

/**
 * The password policy of `POST /me/password` (core/password-policy.ts), with the range API
 * when PASSWORD_BREACH_CHECK_URL is set here too; one it cannot reach is said on stderr.
 */
const policyOf = () =>
  passwordPolicy({
    telemetry: {
      emit: (event) => {
        if (event === 'breach_check_unavailable') {
          process.stderr.write('users: the breached-password check could not be reached; skipped\n')
        }
      },
    },
    breachCheck: loadBreachCheck(),
  })

async function run(
  stores: { readonly users: DynamoUsers; readonly sessions: DynamoSessions },
  command: string,
  username: string,
  roles: string[],
) {
  switch (command) {
    case 'add': {
      const user = await addUser(
        stores.users,
        systemClock,
        { username, password: await readPassword(), roles },
        policyOf(),
      )
      console.log(
        `added ${user.username} (sub ${user.sub}, roles: ${user.roles.join(', ') || 'none'})`,
      )
      break
    }
    case 'set-password': {
      const ended = await setPassword(
        stores,
        systemClock,
        { username, password: await readPassword() },
        policyOf(),
      )
      console.log(`set the password of ${username}; ended ${ended} session(s)`)
      break
    }
    case 'disable':
      console.log(
        `disabled ${username}; ended ${await disableUser(stores, systemClock, username)} session(s)`,
      )
      break
    case 'enable':
      await enableUser(stores.users, systemClock, username)
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
