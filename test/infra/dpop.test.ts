import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag'
import { describe, expect, it } from 'vitest'
import type { ClientConfig } from '../../functions/core/clients.js'
import { addNagPacks } from '../../lib/app-context.js'
import { TokenServiceStack } from '../../lib/token-service-stack.js'
import { type Resource, type Synthesized, synth, testApp, testClients } from './synth.js'

/** The test clients, the native one asking for DPoP nonces. */
const nonceClients: ClientConfig[] = testClients.map((client) =>
  client.client_id === 'native' ? { ...client, dpop_nonce: true } : client,
)

const ofType = (resources: Record<string, Resource>, type: string) =>
  Object.entries(resources).filter(([, resource]) => resource.Type === type)

/** The statements of a function's role that allow `action`. */
function statementsFor({ stack, resources, logicalId }: Synthesized, fn: string, action: string) {
  const role = logicalId(stack.service.functions[fn as keyof typeof stack.service.functions].role)
  return ofType(resources, 'AWS::IAM::Policy')
    .filter(([, policy]) =>
      (policy.Properties.Roles as { Ref: string }[]).some((ref) => ref.Ref === role),
    )
    .flatMap(
      ([, policy]) =>
        (policy.Properties.PolicyDocument as { Statement: Record<string, unknown>[] }).Statement,
    )
    .filter((statement) => [statement.Action].flat().includes(action))
}

function environmentOf({ stack, resources, logicalId }: Synthesized, fn: string) {
  const id = logicalId(stack.service.functions[fn as keyof typeof stack.service.functions].function)
  return (
    (resources[id] as Resource).Properties.Environment as { Variables: Record<string, unknown> }
  ).Variables
}

describe('DPoP nonces in the stack', () => {
  it('creates an HMAC_256 key only login and token may GenerateMac with, for HMAC_SHA_256 only', () => {
    const synthesized = synth({ clients: nonceClients })
    const keys = ofType(synthesized.resources, 'AWS::KMS::Key').filter(
      ([, key]) => key.Properties.KeySpec === 'HMAC_256',
    )
    expect(keys).toHaveLength(1)
    const [keyId, key] = keys[0] as [string, Resource]
    expect(key.Properties.KeyUsage).toBe('GENERATE_VERIFY_MAC')
    const keyArn = { 'Fn::GetAtt': [keyId, 'Arn'] }
    for (const fn of ['login', 'token']) {
      expect(statementsFor(synthesized, fn, 'kms:GenerateMac')).toEqual([
        {
          Action: 'kms:GenerateMac',
          Effect: 'Allow',
          Resource: keyArn,
          Condition: { StringEquals: { 'kms:MacAlgorithm': 'HMAC_SHA_256' } },
        },
      ])
      expect(environmentOf(synthesized, fn).DPOP_NONCE_KEY_ID).toEqual(keyArn)
    }
    for (const fn of ['revoke', 'jwks', 'sessions', 'me']) {
      expect(statementsFor(synthesized, fn, 'kms:GenerateMac')).toEqual([])
      expect(environmentOf(synthesized, fn).DPOP_NONCE_KEY_ID).toBeUndefined()
    }
  })

  it('creates no nonce key while no client asks for nonces', () => {
    const synthesized = synth()
    expect(
      ofType(synthesized.resources, 'AWS::KMS::Key').filter(
        ([, key]) => key.Properties.KeySpec === 'HMAC_256',
      ),
    ).toEqual([])
    expect(environmentOf(synthesized, 'login').DPOP_NONCE_KEY_ID).toBeUndefined()
  })

  it('brings no cdk-nag finding', () => {
    const app = testApp()
    const stack = new TokenServiceStack(app, 'Nagged', { clients: nonceClients })
    addNagPacks(app)
    for (const pack of [new AwsSolutionsChecks(), new ServerlessChecks()]) {
      expect(
        pack
          .validateScope(stack)
          .violations.map((v) => `${v.ruleName} ${v.violatingResources[0]?.constructPath}`),
      ).toEqual([])
    }
  })
})

describe('DPoP over CORS', () => {
  it('lets browsers send the DPoP header and read DPoP-Nonce', () => {
    const { template } = synth()
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      CorsConfiguration: {
        AllowHeaders: ['authorization', 'content-type', 'dpop'],
        ExposeHeaders: ['www-authenticate', 'retry-after', 'dpop-nonce'],
      },
    })
  })
})
