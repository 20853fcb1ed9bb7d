import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, pidExists } from '../../local/dynamodb-local.js'
import { leakedSecrets, recordSecret } from '../support/secrets.js'

const DEMO_PASSWORD = 'a-demo-password-for-this-test'
let child: ChildProcess
let url: string
let dynamoPort: number
let output = ''

const javaPids = () =>
  spawnSync('pgrep', ['-f', `DynamoDBLocal.jar.*-port ${dynamoPort}`], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean)
    .map(Number)

beforeAll(async () => {
  const port = await freePort()
  dynamoPort = await freePort()
  url = `http://localhost:${port}`
  recordSecret(DEMO_PASSWORD)
  child = spawn(process.execPath, ['--import', 'tsx', 'bin/local.ts'], {
    env: {
      ...process.env,
      PORT: String(port),
      DYNAMODB_PORT: String(dynamoPort),
      DEMO_PASSWORD,
      LOCAL_KEY_DIR: join(mkdtempSync(join(tmpdir(), 'local-mode-')), 'keys'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout?.on('data', (chunk) => {
    output += chunk
  })
  child.stderr?.on('data', (chunk) => {
    output += chunk
  })
  for (let waited = 0; !output.includes('Ctrl-C stops'); waited += 100) {
    if (waited > 60_000 || child.exitCode !== null)
      throw new Error(`npm start did not come up:\n${output}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
})

afterAll(() => {
  if (child.exitCode === null) child.kill('SIGKILL')
  for (const pid of javaPids()) process.kill(pid, 'SIGKILL')
})

describe('npm start (local mode)', () => {
  it('prints curl examples and serves login, refresh and revoke for the seeded demo user', async () => {
    expect(output).toContain(`curl -s ${url}/login`)
    expect(output).toContain(`${url}/token`)
    expect(output).toContain(`${url}/revoke`)
    expect(output).not.toContain(DEMO_PASSWORD) // printed as $DEMO_PASSWORD when it was set
    const form = (body: Record<string, string>) => ({
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(body),
    })
    // biome-ignore lint/suspicious/noExplicitAny: a token response
    const login: any = await (
      await fetch(
        `${url}/login`,
        form({ username: 'demo', password: DEMO_PASSWORD, client_id: 'demo-native' }),
      )
    ).json()
    recordSecret(login.access_token, login.refresh_token)
    expect(login.token_type).toBe('Bearer')
    // biome-ignore lint/suspicious/noExplicitAny: a token response
    const refreshed: any = await (
      await fetch(
        `${url}/token`,
        form({
          grant_type: 'refresh_token',
          refresh_token: login.refresh_token,
          client_id: 'demo-native',
        }),
      )
    ).json()
    recordSecret(refreshed.access_token, refreshed.refresh_token)
    expect(refreshed.refresh_token).toMatch(/^rt1_/)
    const revoked = await fetch(
      `${url}/revoke`,
      form({ token: refreshed.refresh_token, client_id: 'demo-native' }),
    )
    expect(revoked.status).toBe(200)
    const jwks = (await (await fetch(`${url}/.well-known/jwks.json`)).json()) as {
      keys: { kid: string }[]
    }
    expect(jwks.keys[0].kid).toEqual(expect.any(String))
  })

  it('prints each security event once its change committed, as one CloudEvents JSON line with its type at the top level', async () => {
    const form = (body: Record<string, string>) => ({
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'user-agent': 'local-mode-test/1.0',
      },
      body: new URLSearchParams(body),
    })
    const post = (path: string, body: Record<string, string>) =>
      fetch(`${url}${path}`, form({ client_id: 'demo-native', ...body }))
    const login = (await (
      await post('/login', { username: 'demo', password: DEMO_PASSWORD })
    ).json()) as { access_token: string; refresh_token: string }
    recordSecret(login.access_token, login.refresh_token)
    const claims = JSON.parse(
      Buffer.from(login.access_token.split('.')[1] as string, 'base64url').toString(),
    ) as { sub: string; sid: string }
    expect((await post('/revoke', { token: login.refresh_token })).status).toBe(200)
    const wrong = await post('/login', { username: 'demo', password: `${DEMO_PASSWORD}-not` })
    expect(wrong.status).toBe(400)
    const unknown = await post('/login', { username: 'nobody-at-all', password: 'whatever-1' })
    expect(unknown.status).toBe(400)

    // biome-ignore lint/suspicious/noExplicitAny: CloudEvents read as printed
    const events = (): any[] =>
      output
        .split('\n')
        .filter((line) => line.startsWith('{"specversion"'))
        .map((line) => JSON.parse(line))
    const mine = () =>
      events().filter(
        (e) =>
          e.data.user_agent === 'local-mode-test/1.0' &&
          (e.subject === claims.sub || e.subject === undefined),
      )
    // The stream is read a few times a second: wait for all four, however busy the machine.
    for (let waited = 0; mine().length < 4; waited += 100) {
      if (waited > 30_000) throw new Error(`events printed so far:\n${JSON.stringify(events())}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const printed = mine()
    // The stream orders records per item only (docs/events.md): compare as a set.
    expect(printed.map((e) => e.type).sort()).toEqual([
      'login.failed',
      'login.failed',
      'login.succeeded',
      'session.revoked',
    ])
    for (const event of printed) {
      expect(event).toMatchObject({
        specversion: '1.0',
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        source: url,
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        datacontenttype: 'application/json',
      })
      expect(event.data).toMatchObject({
        client_id: 'demo-native',
        source_ip: expect.stringMatching(/127\.0\.0\.1|::1/),
      })
    }
    const one = (type: string, reason?: string) =>
      printed.find((e) => e.type === type && (reason === undefined || e.data.reason === reason))
    const succeeded = one('login.succeeded')
    const revoked = one('session.revoked')
    const failed = one('login.failed', 'wrong_password')
    const unknownUser = one('login.failed', 'unknown_username')
    expect(succeeded).toMatchObject({ subject: claims.sub, data: { sid: claims.sid } })
    expect(revoked).toMatchObject({
      subject: claims.sub,
      data: { sid: claims.sid, reason: 'revoked' },
    })
    expect(failed).toMatchObject({ subject: claims.sub, data: { reason: 'wrong_password' } })
    // No subject for a username no account has, and never the username itself.
    expect(unknownUser.subject).toBeUndefined()
    expect(unknownUser.data.reason).toBe('unknown_username')
    expect(output).not.toContain('nobody-at-all')
    expect(new Set(printed.map((e) => e.id)).size).toBe(4)
    expect(leakedSecrets(output)).toEqual([])
  })

  it('moves the demo clients’ origins to PORT: the cookie-mode demo client logs in from this origin', async () => {
    expect(url).not.toContain(':3000')
    const login = await fetch(`${url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: url },
      body: new URLSearchParams({
        username: 'demo',
        password: DEMO_PASSWORD,
        client_id: 'demo-spa',
      }),
    })
    expect(login.status).toBe(200)
    expect(login.headers.get('access-control-allow-origin')).toBe(url)
    const cookie = login.headers.getSetCookie()[0] ?? ''
    recordSecret(/^[^=]+=([^;]*)/.exec(cookie)?.[1])
    recordSecret(((await login.json()) as { access_token: string }).access_token)
    expect(cookie).toMatch(/^__Host-rt_demo-spa=/)
  })

  it('ends DynamoDB Local (the Java process) on SIGTERM and exits', async () => {
    const pids = javaPids()
    expect(pids.length).toBe(1)
    child.kill('SIGTERM')
    const [code] = await once(child, 'exit')
    expect(code).toBe(0)
    expect(pids.filter(pidExists)).toEqual([])
    expect(output).not.toContain(DEMO_PASSWORD)
  })
})

describe('npm start on a busy port', () => {
  it('refuses before DynamoDB Local starts, naming PORT', async () => {
    const busy = createServer()
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
    const port = (busy.address() as AddressInfo).port
    const freeDynamoPort = await freePort()
    try {
      const run = spawnSync(process.execPath, ['--import', 'tsx', 'bin/local.ts'], {
        env: { ...process.env, PORT: String(port), DYNAMODB_PORT: String(freeDynamoPort) },
        encoding: 'utf8',
        timeout: 60_000,
      })
      expect(run.status).toBe(1)
      expect(run.stderr).toContain(
        `npm start: port ${port} is in use: the HTTP API cannot listen there (choose another with PORT=...)`,
      )
      expect(run.stdout).not.toContain('DynamoDB Local at')
    } finally {
      busy.close()
    }
  })
})
