/**
 * `npm run users`, run as a person would: a child process, against a table on
 * DynamoDB Local; at a terminal through `script`, which gives it a real pty.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { beforeAll, describe, expect, it } from 'vitest'
import { DynamoSessions } from '../../functions/adapters/dynamodb/sessions.js'
import { DynamoUsers } from '../../functions/adapters/dynamodb/users.js'
import { verifyPassword } from '../../functions/core/passwords.js'
import type { Session, User } from '../../functions/core/ports.js'
import { newSessionId } from '../../functions/core/refresh-token.js'
import { sessionIsLive } from '../../functions/core/sessions.js'
import { createTestTable } from '../support/dynamo.js'
import { recordSecret } from '../support/secrets.js'

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const USERS = [process.execPath, '--import', 'tsx', 'bin/users.ts']
let store: DynamoUsers
let sessions: DynamoSessions
let table: string
const endpoint = () => process.env.DYNAMODB_ENDPOINT as string

beforeAll(async () => {
  const created = await createTestTable()
  table = created.tableName
  store = new DynamoUsers(created.client, table)
  sessions = new DynamoSessions(created.client, table)
})

/** A session of the user's, written as login writes it. */
async function sessionOf(user: User): Promise<Session> {
  const now = Date.now()
  const session: Session = {
    sid: newSessionId(),
    sub: user.sub,
    clientId: 'test-native',
    scope: 'api',
    status: 'active',
    createdAt: now - 1000,
    lastUsedAt: now - 1000,
    idleExpiresAt: now + 3_600_000,
    absoluteExpiresAt: now + 3_600_000,
    generation: 0,
    currentHash: `hash-${Math.random()}`,
  }
  const created = await sessions.createSession(session, user)
  expect(created).toEqual({ created: true })
  return session
}

/** Whether the session can still be used, by the rule refresh and the authorizer apply. */
async function live(session: Session): Promise<boolean> {
  const state = await sessions.loadSessionState(session)
  return state.session !== undefined && sessionIsLive(state.session, state.user, Date.now())
}

/** Runs the command with `input` piped to its stdin (not a terminal). */
async function run(args: readonly string[], input = '', env = process.env): Promise<Run> {
  const [command, ...rest] = USERS as [string, ...string[]]
  const child = spawn(command, [...rest, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => {
    stdout += chunk
  })
  child.stderr.on('data', (chunk) => {
    stderr += chunk
  })
  child.stdin.end(input)
  const [code] = await once(child, 'close')
  return { code, stdout, stderr }
}

const quote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`

/**
 * Runs the command at a terminal and types `keys` at its first password prompt, and
 * `again` (by default the same keys) at the second. Returns everything the terminal
 * showed, echo included.
 */
async function runAtTerminal(args: readonly string[], keys: string, again = keys): Promise<Run> {
  const command = [...USERS, ...args].map(quote).join(' ')
  const child = spawn('script', ['--quiet', '--return', '--command', command, '/dev/null'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let screen = ''
  const answers = [
    { prompt: 'password: ', keys },
    { prompt: 'password again: ', keys: again },
  ]
  child.stdout.on('data', (chunk) => {
    screen += chunk
    const next = answers[0]
    if (next && screen.trimEnd().endsWith(next.prompt.trimEnd())) {
      answers.shift()
      child.stdin.write(next.keys)
    }
  })
  const [code] = await once(child, 'close')
  return { code, stdout: screen, stderr: '' }
}

describe('npm run users', () => {
  it.each(['--help', '-h'])('prints its usage and exits 0 with %s', async (flag) => {
    const { code, stdout, stderr } = await run([flag])
    expect(code).toBe(0)
    expect(stdout).toContain('usage: npm run users -- ')
    for (const word of [
      'add',
      'set-password',
      'disable',
      'enable',
      '--role',
      '--table',
      '--endpoint',
    ]) {
      expect(stdout).toContain(word)
    }
    expect(stderr).toBe('')
  })

  it('refuses a call without a username with the usage line and exit code 1', async () => {
    const { code, stderr } = await run(['add'])
    expect(code).toBe(1)
    expect(stderr).toContain('usage: npm run users -- ')
  })

  it('reads the password from piped stdin when stdin is not a terminal', async () => {
    const password = 'a piped password, long enough'
    const { code, stdout } = await run(
      ['add', 'piped-user', '--role', 'admin', '--table', table, '--endpoint', endpoint()],
      `${password}\n`,
    )
    expect(code).toBe(0)
    expect(stdout).toContain('added piped-user')
    const user = await store.findUserByUsername('piped-user')
    expect(user?.roles).toEqual(['admin'])
    expect(await verifyPassword(password, user?.passwordHash ?? '')).toBe(true)
  })

  it('does not echo the password typed at a terminal', async () => {
    const password = 'typed at the terminal, not shown'
    // A stray backspace is taken back; Ctrl-D after Enter is never read.
    const { code, stdout } = await runAtTerminal(
      ['add', 'tty-user', '--table', table, '--endpoint', endpoint()],
      `${password}x\u007f\r\u0004`,
    )
    expect(stdout).toContain('password: ')
    expect(stdout).toContain('added tty-user')
    expect(stdout).not.toContain('typed at')
    expect(code).toBe(0)
    const user = await store.findUserByUsername('tty-user')
    expect(await verifyPassword(password, user?.passwordHash ?? '')).toBe(true)
  })

  it('asks twice at a terminal and changes nothing when the two differ', async () => {
    const { code, stdout } = await runAtTerminal(
      ['add', 'mistyped-user', '--table', table, '--endpoint', endpoint()],
      'the first spelling of it\r',
      'the second spelling of it\r',
    )
    expect(stdout).toContain('password: ')
    expect(stdout).toContain('password again: ')
    expect(stdout).toContain('users: the two passwords differ; nothing was changed')
    expect(stdout).not.toContain('spelling')
    expect(code).toBe(1)
    expect(await store.findUserByUsername('mistyped-user')).toBeUndefined()
  })

  it('says that nothing was read when standard input is empty, and changes nothing', async () => {
    const { code, stderr } = await run(
      ['add', 'empty-input-user', '--table', table, '--endpoint', endpoint()],
      '',
    )
    expect(code).toBe(1)
    expect(stderr.trim()).toMatch(
      /^users: nothing was read from standard input: pipe the password in/,
    )
    expect(await store.findUserByUsername('empty-input-user')).toBeUndefined()
  })

  it.each([['--password', 'a password in argv'], ['--password=a password in argv']])(
    'refuses %s: a password never goes in argv',
    async (...args) => {
      const { code, stderr } = await run(
        ['add', 'argv-user', ...args, '--table', table, '--endpoint', endpoint()],
        'a piped password, long enough\n',
      )
      expect(code).toBe(1)
      expect(stderr.trim()).toMatch(
        /^users: --password is refused: a password never goes on the command line/,
      )
      expect(stderr).not.toContain('a password in argv')
      expect(await store.findUserByUsername('argv-user')).toBeUndefined()
    },
  )

  describe('on a deployed table (--table) with no AWS configuration', () => {
    /** This process's environment without any AWS setting, and no AWS files or instance role. */
    const bare = (extra: Record<string, string> = {}) => {
      const env: NodeJS.ProcessEnv = { ...process.env }
      for (const name of Object.keys(env)) if (name.startsWith('AWS_')) delete env[name]
      return {
        ...env,
        AWS_CONFIG_FILE: '/nonexistent/aws-config',
        AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
        AWS_EC2_METADATA_DISABLED: 'true',
        ...extra,
      }
    }

    it('says the region is missing', async () => {
      const { code, stderr } = await run(['disable', 'someone', '--table', 'Tokens'], '', bare())
      expect(code).toBe(1)
      expect(stderr.trim()).toBe(
        'users: no AWS region for the table: set AWS_REGION (or AWS_PROFILE, with a region in its profile)',
      )
    })

    it('says the credentials are missing, naming the region', async () => {
      const { code, stderr } = await run(
        ['disable', 'someone', '--table', 'Tokens'],
        '',
        bare({ AWS_REGION: 'eu-west-1' }),
      )
      expect(code).toBe(1)
      expect(stderr.trim()).toMatch(
        /^users: no AWS credentials for the table in eu-west-1: set AWS_PROFILE .*AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY$/,
      )
    })
  })

  it('sets a password read from piped stdin and ends every session of the user', async () => {
    const first = 'the first password, long enough'
    const second = 'the second password, long enough'
    recordSecret(first, second)
    const args = ['--table', table, '--endpoint', endpoint()]
    expect((await run(['add', 'reset-user', ...args], `${first}\n`)).code).toBe(0)
    const user = (await store.findUserByUsername('reset-user')) as User
    const other = (await store.findUserByUsername('piped-user')) as User
    const mine = [await sessionOf(user), await sessionOf(user)]
    const theirs = await sessionOf(other)

    const { code, stdout, stderr } = await run(
      ['set-password', 'reset-user', ...args],
      `${second}\n`,
    )
    expect(stderr).toBe('')
    expect(code).toBe(0)
    expect(stdout).toContain('set the password of reset-user; ended 2 session(s)')
    const changed = await store.findUserByUsername('reset-user')
    expect(await verifyPassword(second, changed?.passwordHash ?? '')).toBe(true)
    for (const session of mine) {
      expect(await live(session)).toBe(false)
      expect(await sessions.getSession(session.sid)).toMatchObject({
        status: 'revoked',
        revokedReason: 'password_changed',
      })
    }
    expect(await live(theirs)).toBe(true)
  })

  it('sets a password typed at a terminal without echoing it', async () => {
    const password = 'typed anew, never shown'
    recordSecret(password)
    const { code, stdout } = await runAtTerminal(
      ['set-password', 'tty-user', '--table', table, '--endpoint', endpoint()],
      `${password}\r`,
    )
    expect(stdout).toContain('password: ')
    expect(stdout).toContain('set the password of tty-user')
    expect(stdout).not.toContain('never shown')
    expect(code).toBe(0)
    const user = await store.findUserByUsername('tty-user')
    expect(await verifyPassword(password, user?.passwordHash ?? '')).toBe(true)
  })

  it('refuses a password shorter than user creation allows, and an unknown user, changing nothing', async () => {
    const args = ['--table', table, '--endpoint', endpoint()]
    const before = await store.findUserByUsername('piped-user')
    const short = await run(['set-password', 'piped-user', ...args], 'short\n')
    expect(short.code).toBe(1)
    expect(short.stderr.trim()).toBe('users: password must be 8 to 1024 bytes')
    expect(await store.findUserByUsername('piped-user')).toEqual(before)
    const unknown = await run(['set-password', 'nobody-here', ...args], 'long enough password\n')
    expect(unknown.code).toBe(1)
    expect(unknown.stderr.trim()).toBe('users: no user nobody-here')
  })

  it('applies the password policy of POST /me/password: a common password, and for set-password the current one, are refused by rule, never echoed', async () => {
    const args = ['--table', table, '--endpoint', endpoint()]
    for (const common of ['password1', 'Trustno1', 'qwertyuiop']) {
      const added = await run(['add', 'common-user', ...args], `${common}\n`)
      expect(added.code).toBe(1)
      expect(added.stderr.trim()).toBe('users: password is on a list of common passwords')
    }
    expect(await store.findUserByUsername('common-user')).toBeUndefined()
    const current = 'the current password, long enough'
    recordSecret(current)
    expect((await run(['add', 'policy-user', ...args], `${current}\n`)).code).toBe(0)
    const before = await store.findUserByUsername('policy-user')
    const same = await run(['set-password', 'policy-user', ...args], `${current}\n`)
    expect(same.code).toBe(1)
    expect(same.stderr.trim()).toBe('users: password must differ from the current password')
    const common = await run(['set-password', 'policy-user', ...args], 'baseball\n')
    expect(common.stderr.trim()).toBe('users: password is on a list of common passwords')
    expect(await store.findUserByUsername('policy-user')).toEqual(before)
    for (const { stderr, stdout } of [same, common]) {
      expect(`${stdout}${stderr}`).not.toContain(current)
      expect(`${stdout}${stderr}`).not.toContain('baseball')
    }
  })

  it('says a missing table is not found, not that the service is unavailable', async () => {
    const { code, stderr } = await run([
      'disable',
      'someone',
      '--table',
      'no-such-table',
      '--endpoint',
      endpoint(),
    ])
    expect(code).toBe(1)
    expect(stderr.trim()).toBe('users: table no-such-table not found')
  })

  it('says a missing table is not found when adding a user', async () => {
    const { code, stderr } = await run(
      ['add', 'nobody', '--table', 'no-such-table', '--endpoint', endpoint()],
      'a password, long enough\n',
    )
    expect(code).toBe(1)
    expect(stderr.trim()).toBe('users: table no-such-table not found')
  })

  it('says DynamoDB cannot be reached when nothing listens at the endpoint', async () => {
    const server = createServer().listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as { port: number }
    await new Promise((resolve) => server.close(resolve))
    const { code, stderr } = await run([
      'enable',
      'someone',
      '--endpoint',
      `http://127.0.0.1:${port}`,
    ])
    expect(code).toBe(1)
    expect(stderr.trim()).toBe(
      `users: cannot reach DynamoDB at http://127.0.0.1:${port} (is \`npm start\` running?)`,
    )
  })
})
