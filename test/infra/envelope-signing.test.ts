/**
 * Envelope signing in the template (docs/design.md "Keys"): no KMS signing key,
 * one symmetric key that wraps the private keys, and grants conditioned on the
 * encryption context: only login and token may unwrap, only the keys they may
 * sign with; jwks may generate a pair it publishes, never unwrap one.
 */
import { describe, expect, it } from 'vitest'
import { readAppSettings } from '../../lib/config.js'
import { checkKeyChange, type KeyChangeRules, signingKeyModes } from '../../lib/signing-keys.js'
import { demoClients, type Synthesized, synth, testApp } from './synth.js'

type Statement = {
  Effect: string
  Action: string | string[]
  Resource: unknown
  Condition?: Record<string, Record<string, unknown>>
}

/** Every statement of a function's role that names one of `actions`. */
function statements(s: Synthesized, fn: 'login' | 'token' | 'jwks' | 'revoke', actions: string[]) {
  const role = s.logicalId(s.stack.service.functions[fn].role)
  return Object.values(s.resources)
    .filter(
      (r) =>
        r.Type === 'AWS::IAM::Policy' &&
        (r.Properties.Roles as { Ref: string }[]).some((ref) => ref.Ref === role),
    )
    .flatMap((r) => (r.Properties.PolicyDocument as { Statement: Statement[] }).Statement)
    .filter((st) => [st.Action].flat().some((action) => actions.includes(action)))
}

describe('signing: envelope', () => {
  const s = synth({
    signing: 'envelope',
    signingKeys: [
      { id: 'k1', state: 'active' },
      { id: 'k2', state: 'retiring' },
    ],
    transitionSigningKeys: ['k2'],
  })
  const envelopeKey = {
    'Fn::GetAtt': [s.logicalId(s.stack.service.envelopeSigning?.key as never), 'Arn'],
  }
  const owner = 'TestTokenService/TokenService'

  it('creates no KMS signing key, one symmetric key with rotation, and names the keys envelope:<id>', () => {
    s.template.resourceCountIs('AWS::KMS::Alias', 0)
    const keys = Object.values(s.resources).filter((r) => r.Type === 'AWS::KMS::Key')
    // The grace key and the envelope key, both symmetric.
    expect(keys).toHaveLength(2)
    for (const key of keys)
      expect(key.Properties.KeySpec ?? 'SYMMETRIC_DEFAULT').toBe('SYMMETRIC_DEFAULT')
    const login = s.resources[s.logicalId(s.stack.service.functions.login.function)]
    expect(login?.Properties.Environment).toMatchObject({
      Variables: {
        SIGNING_KEY_ID: 'envelope:k1',
        ENVELOPE_KEY_ID: envelopeKey,
        SIGNING_KEY_OWNER: owner,
      },
    })
    const jwks = s.resources[s.logicalId(s.stack.service.functions.jwks.function)]
    expect(jwks?.Properties.Environment).toMatchObject({
      Variables: { RETIRING_KEY_IDS: 'envelope:k2', TABLE_NAME: expect.anything() },
    })
  })

  it('lets login and token unwrap only their signing keys (active and transition), with this stack as owner', () => {
    for (const fn of ['login', 'token'] as const) {
      const [decrypt, ...more] = statements(s, fn, ['kms:Decrypt']).filter(
        (st) => JSON.stringify(st.Resource) === JSON.stringify(envelopeKey),
      )
      expect(more).toEqual([])
      expect(decrypt?.Condition).toEqual({
        StringEquals: {
          'kms:EncryptionContext:owner': owner,
          'kms:EncryptionContext:signing-key': ['k1', 'k2'],
        },
      })
      expect(statements(s, fn, ['kms:Sign'])).toEqual([])
    }
  })

  it('lets jwks generate a pair of this stack’s keys (by tag, tagged envelope key) and read their items only; unwrap none; other functions nothing', () => {
    const [generate] = statements(s, 'jwks', ['kms:GenerateDataKeyPairWithoutPlaintext'])
    expect(generate?.Condition).toEqual({
      StringEquals: {
        'aws:ResourceTag/token-service:signing-key-of': owner,
        'kms:EncryptionContext:owner': owner,
        'kms:DataKeyPairSpec': 'RSA_2048',
      },
    })
    s.template.hasResourceProperties('AWS::KMS::Key', {
      Tags: [{ Key: 'token-service:signing-key-of', Value: owner }],
    })
    const [items] = statements(s, 'jwks', ['dynamodb:PutItem'])
    expect(items?.Condition).toEqual({
      'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['SIGNINGKEY#*'] },
    })
    expect(statements(s, 'jwks', ['kms:Decrypt'])).toEqual([])
    expect(
      statements(s, 'revoke', ['kms:Decrypt', 'kms:GenerateDataKeyPairWithoutPlaintext']),
    ).toEqual([])
  })
})

describe('signing mode of each key', () => {
  const rules = (signing: 'kms' | 'envelope'): KeyChangeRules => ({
    algorithm: 'RS256',
    signing,
    now: new Date('2026-05-01T00:00:00Z'),
    publishWaitSeconds: 0,
    retireWaitSeconds: 0,
  })

  it('is fixed when the key is added: a switch of `signing` applies to keys added after it', () => {
    const { next: first } = checkKeyChange(undefined, [{ id: 'k1', state: 'active' }], rules('kms'))
    const { next, problems } = checkKeyChange(
      first,
      [
        { id: 'k1', state: 'active' },
        { id: 'k2', state: 'retiring' },
      ],
      rules('envelope'),
    )
    expect(problems).toEqual([])
    expect(signingKeyModes(next)).toEqual({ k1: 'kms', k2: 'envelope' })
  })

  it('makes a stack in the middle of a switch keep its KMS key and add the envelope key', () => {
    const mixed = synth({
      signing: 'envelope',
      signingKeys: [
        { id: 'k1', state: 'retiring' },
        { id: 'k2', state: 'active' },
      ],
      signingKeyModes: { k1: 'kms', k2: 'envelope' },
      transitionSigningKeys: ['k1'],
    })
    expect(Object.keys(mixed.stack.service.signingKeys)).toEqual(['k1'])
    expect(mixed.stack.service.envelopeSigning).toBeDefined()
    const login = mixed.resources[mixed.logicalId(mixed.stack.service.functions.login.function)]
    expect(login?.Properties.Environment).toMatchObject({
      Variables: { SIGNING_KEY_ID: 'envelope:k2' },
    })
    // The outgoing KMS key still signs during the switch's half-applied deploy.
    expect(statements(mixed, 'login', ['kms:Sign'])).toHaveLength(1)
  })

  it('is set by -c signing=envelope like any other key', () => {
    const app = testApp({ signing: 'envelope' })
    const settings = readAppSettings(app, {
      path: 'token-service.config.ts',
      config: { clients: demoClients },
    })
    expect(settings.props.signing).toBe('envelope')
    expect(() =>
      readAppSettings(testApp({ signing: 'hsm' }), {
        path: 'token-service.config.ts',
        config: { clients: demoClients },
      }),
    ).toThrow(/signing must be one of "kms", "envelope"/)
  })
})
