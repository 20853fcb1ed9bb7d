import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, pidExists } from '../../local/dynamodb-local.js'
import { recordSecret } from '../support/secrets.js'

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
