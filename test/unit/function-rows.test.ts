import { beforeAll, describe, expect, it } from 'vitest'
import { type KmsUse, LAMBDA_FUNCTIONS } from '../../functions/routes.js'
import type { LambdaName } from '../../functions/settings.js'
import { type Reach, reachability } from '../support/reachable.js'

/**
 * Each function's row in functions/routes.ts lists what it may touch, and the stack
 * grants exactly that (lib/token-service-functions.ts, test/infra/token-service.test.ts).
 * These tests hold the rows to the code: the store methods and KMS commands reachable
 * from each handler, read from the source (test/support/reachable.ts), so that a call
 * on a path no test runs still fails here rather than with AccessDenied in production.
 */

/** The KMS commands each use of a row sends (lib/token-service-keys.ts grants their actions). */
const KMS_COMMANDS: Readonly<Record<KmsUse, readonly string[]>> = {
  sign: ['SignCommand', 'GetPublicKeyCommand'],
  publish: ['GetPublicKeyCommand'],
  envelopeSign: ['DecryptCommand', 'GenerateDataKeyPairWithoutPlaintextCommand'],
  envelopePublish: ['GenerateDataKeyPairWithoutPlaintextCommand'],
  graceSeal: ['GenerateDataKeyCommand', 'DecryptCommand'],
  nonceMac: ['GenerateMacCommand'],
}

const sorted = (values: Iterable<string>) => [...new Set(values)].sort()

describe('each function’s row lists exactly what its code touches', () => {
  const names = Object.keys(LAMBDA_FUNCTIONS) as LambdaName[]
  const reached = new Map<LambdaName, Reach>()

  beforeAll(() => {
    const reach = reachability(names.map((name) => LAMBDA_FUNCTIONS[name].entry))
    for (const name of names) reached.set(name, reach(LAMBDA_FUNCTIONS[name].entry))
  })

  for (const name of names) {
    it(`${name}: calls every store method its row lists, and no other`, () => {
      const code = sorted(reached.get(name)?.storeMethods ?? [])
      expect(code, 'store methods the code can call').toEqual(sorted(LAMBDA_FUNCTIONS[name].store))
    })

    it(`${name}: sends the KMS commands of its row's uses, and no other`, () => {
      const code = sorted(reached.get(name)?.kmsCommands ?? [])
      const row = sorted(LAMBDA_FUNCTIONS[name].kms.flatMap((use) => KMS_COMMANDS[use]))
      expect(code, 'KMS commands the code can send').toEqual(row)
    })
  }

  it('sees calls on rare paths and through the ports the handlers wire', () => {
    // Login revokes a session only when its token could not be signed; token writes an
    // event alone only for a client whose reuse is reported; both through their ports.
    expect(reached.get('login')?.storeMethods).toContain('revokeSession')
    expect(reached.get('token')?.storeMethods).toContain('appendEvent')
    // A DPoP proof's single use, through the grant the handler builds.
    expect(reached.get('token')?.storeMethods).toContain('recordProof')
    // The plain authorizer shares strict mode's code but holds no DynamoDB store.
    expect(reached.get('authorizer')?.storeMethods.size).toBe(0)
    expect(reached.get('authorizerStrict')?.storeMethods).toEqual(new Set(['loadSessionState']))
  })
})
