/**
 * The client package as people install it: `npm pack` of the workspace, its file list and
 * manifest, the tarball installed into a fresh project, then used from there: from plain
 * Node, and bundled for the browser (its size budget) and run in Chromium.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClientConfig } from '../../functions/core/clients.js'
import { launchChromium } from '../support/browser.js'
import { type Harness, PASSWORD, startHarness } from '../support/harness.js'

const run = promisify(execFile)
const root = join(import.meta.dirname, '../..')
const NAME = '@rotating-token-service/client'

/** The core's budget, minified and gzipped (issue 19). */
const CORE_BUDGET_BYTES = 6 * 1024
/** What DPoP may add on top; client/README.md states the measured sizes. */
const DPOP_BUDGET_BYTES = 2 * 1024

const APP: ClientConfig = {
  client_id: 'test-package-app',
  type: 'native',
  audience: 'https://api.test',
  scopes: ['openid', 'api'],
  access_token_ttl_seconds: 60,
}

interface Packed {
  readonly filename: string
  readonly files: readonly { readonly path: string }[]
}

let project: string
let packed: Packed
let h: Harness

/** Bundles `source` (an entry of the fresh project) for the browser, minified. */
async function bundle(source: string): Promise<string> {
  const entry = join(project, `entry-${Math.random().toString(36).slice(2)}.js`)
  await writeFile(entry, source)
  const result = await build({
    entryPoints: [entry],
    absWorkingDir: project,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    write: false,
    logLevel: 'silent',
  })
  return result.outputFiles[0]?.text ?? ''
}

const gzipped = (code: string) => gzipSync(code, { level: 9 }).length

beforeAll(async () => {
  const packs = await mkdtemp(join(tmpdir(), 'client-pack-'))
  // `npm pack` runs the package's prepack: a clean build of dist/.
  const { stdout } = await run(
    'npm',
    ['pack', '--workspace', NAME, '--pack-destination', packs, '--json', '--silent'],
    { cwd: root, maxBuffer: 8 * 1024 * 1024 },
  )
  packed = (JSON.parse(stdout) as Packed[])[0] as Packed
  project = await mkdtemp(join(tmpdir(), 'client-consumer-'))
  await writeFile(
    join(project, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
  )
  await run(
    'npm',
    ['install', join(packs, packed.filename), '--no-audit', '--no-fund', '--silent'],
    { cwd: project },
  )
  h = await startHarness({ clients: [APP] })
}, 180_000)
afterAll(() => h?.close())

describe('the client package (@rotating-token-service/client)', () => {
  it('packs its built JavaScript and types, README and CHANGELOG: no sources, tests or config', async () => {
    const modules = (await readdir(join(root, 'client')))
      .filter((name) => name.endsWith('.ts') && !name.endsWith('.d.ts'))
      .map((name) => name.replace(/\.ts$/, ''))
    expect(packed.files.map((file) => file.path).sort()).toEqual(
      [
        'CHANGELOG.md',
        'README.md',
        'package.json',
        ...modules.flatMap((name) => [`dist/${name}.js`, `dist/${name}.d.ts`]),
      ].sort(),
    )
  })

  it('is an ESM package with exports, types, sideEffects: false, no runtime dependency, for Node 20+', async () => {
    const manifest = JSON.parse(
      await readFile(join(project, 'node_modules', NAME, 'package.json'), 'utf8'),
    )
    expect(manifest).toMatchObject({
      name: NAME,
      type: 'module',
      sideEffects: false,
      engines: { node: '>=20' },
      exports: {
        '.': { types: './dist/index.d.ts', default: './dist/index.js' },
        './react-native': { types: './dist/react-native.d.ts', default: './dist/react-native.js' },
      },
    })
    expect(manifest.version).toMatch(/^\d+\.\d+\.\d+$/)
    expect(manifest.dependencies ?? {}).toEqual({})
    expect(manifest.peerDependencies ?? {}).toEqual({})
    // The built files import only each other: nothing to install with them.
    const dist = join(project, 'node_modules', NAME, 'dist')
    for (const file of (await readdir(dist)).filter((name) => name.endsWith('.js'))) {
      const source = await readFile(join(dist, file), 'utf8')
      for (const [, a, b] of source.matchAll(/\bfrom\s+'([^']+)'|\bimport\(\s*'([^']+)'/g)) {
        expect(a ?? b, file).toMatch(/^\.\/[\w-]+\.js$/)
      }
      // React Native's URL has no origin or pathname: the client parses none.
      expect(source, file).not.toMatch(/new URL\(/)
    }
  })

  it('logs in and calls a bearer route from plain Node, installed from the tarball', async () => {
    const user = await h.addUser()
    const script = `
      import { createTokenClient } from '${NAME}'
      import { keychainStorage } from '${NAME}/react-native'
      const client = createTokenClient({ baseUrl: process.env.BASE_URL, clientId: '${APP.client_id}' })
      await client.login(process.env.USERNAME, process.env.PASSWORD)
      const me = await (await client.fetch('/me')).json()
      await client.logout()
      console.log(JSON.stringify({ sub: me.sub, after: await client.getAccessToken(), rn: typeof keychainStorage }))`
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: project,
      env: { ...process.env, BASE_URL: h.url, USERNAME: user.username, PASSWORD },
    })
    expect(JSON.parse(stdout)).toEqual({ sub: user.sub, after: null, rn: 'function' })
  })

  it(`bundles for the browser within ${CORE_BUDGET_BYTES} bytes min+gzip, DPoP within ${DPOP_BUDGET_BYTES} more, and none of it when unused`, async () => {
    const core = await bundle(
      `import { cookieStorage, createTokenClient } from '${NAME}'\nexport const auth = createTokenClient({ baseUrl: 'https://auth.example.com', clientId: 'spa', storage: cookieStorage() })\n`,
    )
    const withDpop = await bundle(
      `import { cookieStorage, createDpop, createTokenClient } from '${NAME}'\nexport const auth = createTokenClient({ baseUrl: 'https://auth.example.com', clientId: 'spa', storage: cookieStorage(), dpop: createDpop() })\n`,
    )
    expect(gzipped(core)).toBeLessThanOrEqual(CORE_BUDGET_BYTES)
    expect(gzipped(withDpop) - gzipped(core)).toBeLessThanOrEqual(DPOP_BUDGET_BYTES)
    expect(core).not.toContain('dpop+jwt')
    expect(withDpop).toContain('dpop+jwt')
  })
})

describe('the client package bundled for the browser, in Chromium', () => {
  let browser: Browser
  beforeAll(async () => {
    browser = await launchChromium()
  })
  afterAll(() => browser?.close())

  it('logs in and refreshes from a page that imports it', async () => {
    // The page's clock runs ahead on demand, so that the client takes its token for expired.
    const app = await bundle(`
      import { createTokenClient, memoryStorage } from '${NAME}'
      let ahead = 0
      const client = createTokenClient({
        baseUrl: location.origin,
        clientId: '${APP.client_id}',
        storage: memoryStorage(),
        autoRefresh: false,
        clock: { now: () => Date.now() + ahead },
      })
      window.loginAndRefresh = async (username, password) => {
        await client.login(username, password)
        const first = await client.getAccessToken()
        ahead = 120_000
        const second = await client.getAccessToken()
        const me = await client.fetch('/me')
        return { refreshed: first !== second, me: me.status, sub: (await me.json()).sub }
      }`)
    const page = await (await startHarnessWithPage(app)).browserPage(browser)
    const user = await pageHarness.addUser()
    const result = await page.evaluate(
      ([username, password]) =>
        (
          globalThis as unknown as {
            loginAndRefresh(u: string, p: string): Promise<Record<string, unknown>>
          }
        ).loginAndRefresh(username as string, password as string),
      [user.username, PASSWORD],
    )
    expect(result).toEqual({ refreshed: true, me: 200, sub: user.sub })
    expect(await pageHarness.sessions.listSessions(user.sub)).toEqual([
      expect.objectContaining({ generation: 1 }),
    ])
  })
})

let pageHarness: Harness
afterAll(() => pageHarness?.close())

/** A harness that also serves `app` as a page's script, at its own origin. */
async function startHarnessWithPage(app: string) {
  pageHarness = await startHarness({
    clients: [APP],
    assets: new Map([
      [
        '/',
        {
          contentType: 'text/html; charset=utf-8',
          body: '<!doctype html><title>client</title><script type="module" src="/app.js"></script>',
        },
      ],
      ['/app.js', { contentType: 'text/javascript; charset=utf-8', body: app }],
    ]),
  })
  return {
    async browserPage(browser: Browser) {
      const page = await (await browser.newContext()).newPage()
      await page.goto(`${pageHarness.url}/`)
      await page.waitForFunction(() => 'loginAndRefresh' in globalThis)
      return page
    },
  }
}
