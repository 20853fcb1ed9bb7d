import { createHmac, randomBytes } from 'node:crypto'
import {
  GenerateMacCommand,
  type GenerateMacCommandInput,
  KMSClient,
  KMSInternalException,
} from '@aws-sdk/client-kms'
import { mockClient } from 'aws-sdk-client-mock'
import { describe, expect, it } from 'vitest'
import { kmsDpopNonces, NONCE_KEY_MESSAGE } from '../../functions/adapters/dpop.js'
import { ConfigError, loadDpopNonceKeyId } from '../../functions/config.js'
import { parseClients } from '../../functions/core/clients.js'
import { TemporarilyUnavailable } from '../../functions/core/errors.js'
import { FakeClock } from '../support/clock.js'
import { kmsError } from '../support/fake-kms.js'

/** A KMS that holds one HMAC key and answers GenerateMac as KMS does: HMAC-SHA256 of the message. */
function hmacKms(secret = randomBytes(32)) {
  const client = new KMSClient({ region: 'eu-west-1' })
  const mock = mockClient(client)
  const failures: Error[] = []
  mock.on(GenerateMacCommand).callsFake(async (input: GenerateMacCommandInput) => {
    const failure = failures.shift()
    if (failure) throw failure
    if (input.MacAlgorithm !== 'HMAC_SHA_256') throw new Error('wrong MAC algorithm')
    const mac = createHmac('sha256', secret)
      .update(input.Message as Uint8Array)
      .digest()
    return { KeyId: input.KeyId, MacAlgorithm: input.MacAlgorithm, Mac: new Uint8Array(mac) }
  })
  return {
    client,
    failNext: (error: Error) => failures.push(error),
    calls: () => mock.commandCalls(GenerateMacCommand).map((call) => call.args[0].input),
  }
}

describe('DPoP nonces keyed by a KMS HMAC key', () => {
  it('derive the key with one GenerateMac per container, over the fixed message', async () => {
    const kms = hmacKms()
    const nonces = kmsDpopNonces(kms.client, 'alias/nonce', new FakeClock())
    await nonces()
    await nonces()
    expect(kms.calls()).toEqual([
      {
        KeyId: 'alias/nonce',
        MacAlgorithm: 'HMAC_SHA_256',
        Message: new TextEncoder().encode(NONCE_KEY_MESSAGE),
      },
    ])
  })

  it('agree across containers on the same KMS key, and differ under another key', async () => {
    const clock = new FakeClock()
    const secret = randomBytes(32)
    const one = await kmsDpopNonces(hmacKms(secret).client, 'k', clock)()
    const two = await kmsDpopNonces(hmacKms(secret).client, 'k', clock)()
    const other = await kmsDpopNonces(hmacKms().client, 'k', clock)()
    expect(two.check(one.issue())).toBe(true)
    expect(other.check(one.issue())).toBe(false)
  })

  it('answer 503 when KMS fails, and try again on the next request', async () => {
    const kms = hmacKms()
    const nonces = kmsDpopNonces(kms.client, 'k', new FakeClock())
    kms.failNext(kmsError(KMSInternalException))
    const error = await nonces().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TemporarilyUnavailable)
    expect((error as TemporarilyUnavailable).detail).toBe(
      'kms GenerateMac failed: KMSInternalException',
    )
    expect((await nonces()).issue()).toMatch(/^[\w-]{22}$/)
    expect(kms.calls()).toHaveLength(2)
  })
})

describe('DPOP_NONCE_KEY_ID', () => {
  const clients = (dpopNonce: boolean) =>
    parseClients([
      { client_id: 'app', type: 'native', audience: 'a', dpop_nonce: dpopNonce },
      { client_id: 'web', type: 'native', audience: 'a' },
    ])

  it('must be set when a client has dpop_nonce, and names the clients', () => {
    expect(() => loadDpopNonceKeyId(clients(true), {})).toThrow(ConfigError)
    expect(() => loadDpopNonceKeyId(clients(true), {})).toThrow(
      'DPOP_NONCE_KEY_ID must be set: clients app have dpop_nonce',
    )
    expect(loadDpopNonceKeyId(clients(true), { DPOP_NONCE_KEY_ID: 'alias/n' })).toBe('alias/n')
  })

  it('may be left unset when no client uses nonces', () => {
    expect(loadDpopNonceKeyId(clients(false), {})).toBeUndefined()
  })
})
