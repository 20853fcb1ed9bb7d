/**
 * The construct package as an ops team installs it: `npm pack` of construct/, its file
 * list, the tarball installed into a fresh CDK app (aws-cdk-lib and constructs its own, no
 * esbuild, no sources of this repository), `cdk synth --strict` of
 * `new TokenService(stack, 'Auth', { clients })`, and that template deployed into the
 * stack harness: login, refresh, /me, JWKS.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { LAMBDA_FUNCTIONS } from '../../functions/routes.js'
import { client, seedUser } from './api.js'
import type { CfnResource, StackTemplate } from './assembly.js'
import { Cloud } from './cloud.js'
import { Deployment } from './deployment.js'

const run = promisify(execFile)
const root = join(import.meta.dirname, '../..')
const NAME = '@rotating-token-service/cdk'
const AUDIENCE = 'https://api.consumer.test'

/**
 * The consumer's app: nothing of this repository but the installed package. It keeps the key
 * ledger as this repository's bin/app.ts does: the plan before synth, written after it.
 */
const CLIENTS = `[
  { client_id: 'demo-native', type: 'native', audience: '${AUDIENCE}', scopes: ['openid', 'api'] },
  {
    client_id: 'web',
    type: 'spa',
    audience: '${AUDIENCE}',
    allowed_origins: ['https://app.consumer.test'],
    cookie_mode: true,
  },
]`
const APP = `
import { App, Stack } from 'aws-cdk-lib'
import { planSigningKeyChange, TokenService, unsafeKeyChangeError } from '${NAME}'

const app = new App()
const stack = new Stack(app, 'Consumer')
const ledger = planSigningKeyChange(
  'signing-keys.lock.json',
  'Consumer',
  { clients: ${CLIENTS} },
  new Date(),
)
if (ledger.problems.length > 0) throw unsafeKeyChangeError('Consumer', ledger.problems)
new TokenService(stack, 'Auth', {
  clients: ${CLIENTS},
  transitionSigningKeys: ledger.transitionKeys,
  signingKeyModes: ledger.modes,
})
app.synth()
ledger.write()
`

interface Packed {
  readonly filename: string
  readonly files: readonly { readonly path: string }[]
}

let packed: Packed
let project: string
let template: StackTemplate
const cloud = new Cloud(inject('dynamoEndpoint'))

beforeAll(async () => {
  const packs = await mkdtemp(join(tmpdir(), 'construct-pack-'))
  // `npm pack` runs the package's prepack: lib/ bundled, its types, every function's bundle.
  const { stdout } = await run(
    'npm',
    ['pack', '--workspace', NAME, '--pack-destination', packs, '--json', '--silent'],
    { cwd: root, maxBuffer: 16 * 1024 * 1024, timeout: 240_000 },
  )
  packed = (JSON.parse(stdout) as Packed[])[0] as Packed
  project = await mkdtemp(join(tmpdir(), 'construct-consumer-'))
  // The consumer's own aws-cdk-lib and constructs: this machine's copies, linked.
  const own = (name: string) => `file:${join(root, 'node_modules', name)}`
  await writeFile(
    join(project, 'package.json'),
    JSON.stringify({
      name: 'consumer',
      private: true,
      type: 'module',
      dependencies: { 'aws-cdk-lib': own('aws-cdk-lib'), constructs: own('constructs') },
    }),
  )
  await writeFile(join(project, 'app.mjs'), APP)
  await run(
    'npm',
    ['install', join(packs, packed.filename), '--no-audit', '--no-fund', '--silent'],
    { cwd: project, timeout: 240_000 },
  )
  const out = join(project, 'cdk.out')
  const env: NodeJS.ProcessEnv = { ...process.env, CDK_DISABLE_VERSION_CHECK: '1' }
  for (const name of Object.keys(env)) if (/^AWS_|^CDK_DEFAULT_/.test(name)) delete env[name]
  env.AWS_EC2_METADATA_DISABLED = 'true'
  await run(
    join(root, 'node_modules/.bin/cdk'),
    ['synth', '--strict', '--quiet', '--no-notices', '--app', 'node app.mjs', '--output', out],
    { cwd: project, env, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 },
  )
  template = await stackTemplate(out, 'Consumer')
  await cloud.start()
}, 600_000)

afterAll(() => cloud.stop())

/** The synthesized stack as the stack harness reads it (as test/stack/assembly.ts does). */
async function stackTemplate(out: string, id: string): Promise<StackTemplate> {
  const resources = JSON.parse(await readFile(join(out, `${id}.template.json`), 'utf8'))
    .Resources as Record<string, CfnResource>
  const manifest = JSON.parse(await readFile(join(out, `${id}.assets.json`), 'utf8')) as {
    files: Record<string, { source: { path: string } }>
  }
  return {
    stackName: id,
    resources,
    codeDirectory(logicalId) {
      const key = String(resources[logicalId]?.Properties.Code?.S3Key)
      const asset = manifest.files[key.replace(/\.zip$/, '')]
      if (!asset) throw new Error(`${logicalId}: no asset for code ${key}`)
      return join(out, asset.source.path)
    },
  }
}

describe('the construct package (@rotating-token-service/cdk)', () => {
  it('packs its built code, types, each function’s prebuilt bundle, README and CHANGELOG: no sources, tests, local mode or secrets', () => {
    const files = packed.files.map((file) => file.path)
    const bundles = Object.keys(LAMBDA_FUNCTIONS).map(
      (name) => `assets/functions/${name}/index.mjs`,
    )
    expect(files.filter((file) => file.startsWith('assets/')).sort()).toEqual(bundles.sort())
    expect(files).toEqual(expect.arrayContaining(['dist/index.js', 'README.md', 'CHANGELOG.md']))
    for (const file of files) {
      expect(file).toMatch(
        /^(package\.json|README\.md|CHANGELOG\.md|dist\/index\.js|dist\/types\/.+\.d\.ts|assets\/functions\/\w+\/index\.mjs)$/,
      )
      expect(file).not.toMatch(/test|local\/|demo\/|\.local|lock\.json|\.pem$|keys?\//)
    }
  })

  it('keeps the consumer’s key ledger: the active key recorded after a clean synth', async () => {
    const ledger = JSON.parse(await readFile(join(project, 'signing-keys.lock.json'), 'utf8'))
    expect(ledger).toMatchObject({ version: 1, stacks: { Consumer: { active: 'k1' } } })
    expect(Object.keys(ledger.stacks.Consumer.keys)).toEqual(['k1'])
  })

  it('takes aws-cdk-lib and constructs from the consumer, and brings no esbuild', async () => {
    const manifest = JSON.parse(
      await readFile(join(project, 'node_modules', NAME, 'package.json'), 'utf8'),
    )
    expect(manifest.peerDependencies).toEqual({
      'aws-cdk-lib': expect.any(String),
      constructs: expect.any(String),
    })
    expect(manifest.dependencies ?? {}).toEqual({})
    expect(existsSync(join(project, 'node_modules', 'esbuild'))).toBe(false)
  })

  it('types its props for a TypeScript app: the same app type-checks, and a misspelled client field does not', async () => {
    const tsc = join(root, 'node_modules/typescript/bin/tsc')
    const check = async (source: string) => {
      await writeFile(join(project, 'app.ts'), source)
      await writeFile(
        join(project, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            strict: true,
            module: 'nodenext',
            moduleResolution: 'nodenext',
            target: 'es2022',
            noEmit: true,
            skipLibCheck: true,
            types: [],
          },
          files: ['app.ts'],
        }),
      )
      return run(process.execPath, [tsc, '-p', project], { cwd: project }).then(
        () => '',
        (error: { stdout: string }) => error.stdout,
      )
    }
    expect(await check(APP)).toBe('')
    expect(await check(APP.replaceAll("scopes: ['openid', 'api']", "scope: ['openid']"))).toMatch(
      /error TS2561: .*'scope' does not exist in type 'ClientConfig'/,
    )
  })

  it('synthesizes with --strict: every function on its prebuilt bundle, arm64, Node 24', () => {
    const functions = Object.entries(template.resources).filter(
      ([, resource]) => resource.Type === 'AWS::Lambda::Function',
    )
    expect(functions).toHaveLength(9)
    for (const [logicalId, { Properties }] of functions) {
      expect(Properties).toMatchObject({
        Handler: 'index.handler',
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
      })
      expect(existsSync(join(template.codeDirectory(logicalId), 'index.mjs'))).toBe(true)
    }
  })

  describe('deployed into the stack harness', () => {
    let deployment: Deployment
    let user: string
    beforeAll(async () => {
      deployment = await Deployment.start(cloud, { functions: template })
      user = await seedUser(deployment, inject('dynamoEndpoint'))
    })
    afterAll(() => deployment?.stop())

    it('logs in, refreshes, answers /me, and publishes the JWKS the access tokens verify with', async () => {
      const api = client(deployment)
      const login = await api.login(user)
      expect(login.status).toBe(200)
      const refreshed = await api.refresh(login.body.refresh_token)
      expect(refreshed.status).toBe(200)
      expect(refreshed.body.refresh_token).not.toBe(login.body.refresh_token)
      const me = await api.me(refreshed.body.access_token)
      expect(me.status).toBe(200)
      expect(me.body).toMatchObject({ username: user, client_id: 'demo-native' })
      const jwks = createRemoteJWKSet(new URL(`${deployment.url}/.well-known/jwks.json`))
      const { payload } = await jwtVerify(refreshed.body.access_token, jwks, {
        issuer: `https://${deployment.apiHost}`,
        audience: AUDIENCE,
        typ: 'at+jwt',
      })
      expect(payload.username).toBe(user)
    })
  })
})
