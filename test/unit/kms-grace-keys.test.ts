import { describe, expect, it } from 'vitest'
import { KmsGraceKeys } from '../../functions/adapters/kms-grace-keys.js'
import { TemporarilyUnavailable } from '../../functions/core/errors.js'
import {
  newRefreshToken,
  newSessionId,
  newUserId,
  openChild,
  sealChild,
  sealKeyName,
} from '../../functions/core/refresh-token.js'
import { FakeKms, GRACE_KEY_ALIAS, networkError, throttling } from '../support/fake-kms.js'

const container = (kms: FakeKms, keyId = GRACE_KEY_ALIAS) =>
  new KmsGraceKeys({ client: kms.client, keyId })

describe('KmsGraceKeys: the server half of the grace seals, as KMS data keys', () => {
  it('asks KMS for one AES-256 data key per container, bound to its purpose, however many seals', async () => {
    const kms = new FakeKms()
    const keys = container(kms)
    const [a, b] = await Promise.all([keys.current(), keys.current()])
    expect(await keys.current()).toBe(a)
    expect(b).toBe(a)
    expect(a.secret).toHaveLength(32)
    expect(a.name).toMatch(/^[A-Za-z0-9_-]+$/)
    expect(kms.generateDataKeyCalls()).toEqual([
      {
        KeyId: GRACE_KEY_ALIAS,
        KeySpec: 'AES_256',
        EncryptionContext: { purpose: 'rotating-token-service grace child' },
      },
    ])
  })

  it('opens its own key without KMS, and another container’s with one Decrypt, then from its cache', async () => {
    const kms = new FakeKms()
    const first = container(kms)
    const second = container(kms)
    const key = await first.current()
    expect(await first.open(key.name)).toEqual(key.secret)
    expect(kms.decryptCalls()).toHaveLength(0)
    expect(Buffer.from((await second.open(key.name)) as Uint8Array)).toEqual(
      Buffer.from(key.secret),
    )
    await second.open(key.name)
    expect(kms.decryptCalls()).toHaveLength(1)
    expect(kms.decryptCalls()[0]).toMatchObject({
      KeyId: GRACE_KEY_ALIAS,
      EncryptionContext: { purpose: 'rotating-token-service grace child' },
    })
  })

  it('lets a grace replay on another container open a child sealed on the first', async () => {
    const kms = new FakeKms()
    const sid = newSessionId()
    const parent = newRefreshToken({ sub: newUserId(), sid })
    const child = newRefreshToken({ sub: newUserId(), sid })
    const sealed = sealChild(parent, sid, child, await container(kms).current())
    const name = sealKeyName(sealed) as string
    expect(openChild(parent, sid, sealed, await container(kms).open(name))).toBe(child)
  })

  it('opens nothing for a name that no key of ours wrapped: another KMS key, or garbage', async () => {
    const kms = new FakeKms()
    const foreign = await container(kms, 'alias/other-symmetric').current()
    const keys = container(kms)
    expect(await keys.open(foreign.name)).toBeUndefined()
    expect(await keys.open('bm90LWEta2V5')).toBeUndefined()
  })

  it.each([
    ['throttled', throttling],
    ['unreachable', networkError],
  ])('answers 503 while KMS is %s, and retries on the next call', async (_, fault) => {
    const kms = new FakeKms()
    const keys = container(kms)
    kms.failNext('GenerateDataKey', fault())
    await expect(keys.current()).rejects.toBeInstanceOf(TemporarilyUnavailable)
    const key = await keys.current()
    const other = container(kms)
    kms.failNext('Decrypt', fault())
    await expect(other.open(key.name)).rejects.toBeInstanceOf(TemporarilyUnavailable)
    expect(await other.open(key.name)).toEqual(key.secret)
  })
})
