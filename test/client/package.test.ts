import { execFile } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClientConfig } from '../../functions/core/clients.js'
import { type Harness, PASSWORD, startHarness } from '../support/harness.js'

const run = promisify(execFile)
const root = join(import.meta.dirname, '../..')
const dist = join(root, 'client/dist')

const APP: ClientConfig = {
  client_id: 'test-node-app',
  type: 'native',
  audience: 'https://api.test',
  scopes: ['openid', 'api'],
}

let h: Harness

beforeAll(async () => {
  // What `npm ci` runs as `prepare`: the client compiled to JavaScript with its types.
  await run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'client'], {
    cwd: root,
  })
  h = await startHarness({ clients: [APP] })
})
afterAll(() => h?.close())

describe('the client package', () => {
  it('is importable as rotating-token-service/client from plain Node, types included', async () => {
    const script = `
      const client = await import('rotating-token-service/client')
      console.log(JSON.stringify(Object.keys(client).sort()))`
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root,
    })
    expect(JSON.parse(stdout)).toEqual([
      'TokenClientError',
      'cookieStorage',
      'createDpop',
      'createTokenClient',
      'defaultDpopKeyStore',
      'ecdsaDerToRaw',
      'indexedDbDpopKeyStore',
      'localStorageStorage',
      'memoryDpopKeyStore',
      'memoryStorage',
    ])
    const types = await readFile(join(dist, 'index.d.ts'), 'utf8')
    expect(types).toContain('createTokenClient')
  })

  it('has no runtime dependencies: the built files import only each other', async () => {
    const files = (await readdir(dist)).filter((name) => name.endsWith('.js'))
    expect(files.length).toBeGreaterThan(0)
    for (const file of files) {
      const source = await readFile(join(dist, file), 'utf8')
      const specifiers = [...source.matchAll(/\bfrom\s+'([^']+)'|\bimport\(\s*'([^']+)'/g)].map(
        (match) => match[1] ?? match[2],
      )
      for (const specifier of specifiers) expect(specifier).toMatch(/^\.\/[\w-]+\.js$/)
    }
  })

  it('logs in and calls a bearer route from a plain Node process', async () => {
    const user = await h.addUser()
    const script = `
      import { createTokenClient } from 'rotating-token-service/client'
      const client = createTokenClient({ baseUrl: process.env.BASE_URL, clientId: 'test-node-app' })
      await client.login(process.env.USERNAME, process.env.PASSWORD)
      const me = await (await client.fetch('/me')).json()
      await client.logout()
      console.log(JSON.stringify({ sub: me.sub, after: await client.getAccessToken() }))`
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root,
      env: { ...process.env, BASE_URL: h.url, USERNAME: user.username, PASSWORD },
    })
    expect(JSON.parse(stdout)).toEqual({ sub: user.sub, after: null })
  })
})
