import { Duration, Stack } from 'aws-cdk-lib'
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag'
import { describe, expect, it } from 'vitest'
import type { ClientConfig } from '../../functions/core/clients.js'
import { addNagPacks } from '../../lib/app-context.js'
import { TokenAuthorizer } from '../../lib/token-authorizer.js'
import { TokenServiceStack } from '../../lib/token-service-stack.js'
import { type Resource, type Synthesized, synth, testApp, testClients } from './synth.js'

/** The test clients with DPoP at its default (`optional`). */
const dpopClients: ClientConfig[] = testClients.map(({ dpop: _, ...client }) => client)

/** The same, the native one asking for DPoP nonces. */
const nonceClients: ClientConfig[] = dpopClients.map((client) =>
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

describe('the authorizers with DPoP clients', () => {
  const ttlOf = ({ template }: Synthesized) =>
    (
      Object.values(template.findResources('AWS::ApiGatewayV2::Authorizer'))[0] as {
        Properties: { AuthorizerResultTtlInSeconds: number; IdentitySource: string[] }
      }
    ).Properties

  it('caches no answer of the Lambda authorizer, whose identity source stays Authorization', () => {
    expect(ttlOf(synth({ clients: dpopClients }))).toMatchObject({
      AuthorizerResultTtlInSeconds: 0,
      IdentitySource: ['$request.header.Authorization'],
    })
    // One client that may use DPoP is enough.
    const one = [dpopClients[0], testClients[1]] as ClientConfig[]
    expect(ttlOf(synth({ clients: one })).AuthorizerResultTtlInSeconds).toBe(0)
    expect(ttlOf(synth()).AuthorizerResultTtlInSeconds).toBeGreaterThan(0)
  })

  it('refuses an answer cache while a client may use DPoP, naming the clients', () => {
    expect(() => synth({ clients: dpopClients, authorizerCacheTtl: Duration.seconds(5) })).toThrow(
      /resultsCacheTtl must be 0 while clients use DPoP \(native, spa\): .* Set their dpop to "disabled"/,
    )
    expect(
      ttlOf(synth({ clients: dpopClients, authorizerCacheTtl: Duration.seconds(0) }))
        .AuthorizerResultTtlInSeconds,
    ).toBe(0)
    const stack = new Stack(testApp(), 'Orders')
    const auth = new TokenAuthorizer(stack, 'Auth', {
      issuer: 'https://auth.example.com',
      clients: dpopClients,
    })
    expect(auth.resultsCacheTtl.toSeconds()).toBe(0)
  })

  it('refuses the native JWT authorizer with a client that requires DPoP, which it cannot check', () => {
    const required = dpopClients.map((client) =>
      client.client_id === 'spa' ? { ...client, dpop: 'required' as const } : client,
    )
    expect(() => synth({ clients: required, authorizer: 'jwt' })).toThrow(
      /clients spa have dpop "required", but the native JWT authorizer checks no DPoP proof/,
    )
    expect(() => synth({ clients: dpopClients, authorizer: 'jwt' })).not.toThrow()
  })
})

describe('DPoP over CORS', () => {
  it('lets browsers send the DPoP header and read DPoP-Nonce and Date', () => {
    const { template } = synth()
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      CorsConfiguration: {
        AllowHeaders: ['authorization', 'content-type', 'dpop'],
        ExposeHeaders: ['www-authenticate', 'retry-after', 'dpop-nonce', 'date'],
      },
    })
  })
})
