import { GenerateDataKeyCommand } from '@aws-sdk/client-kms'
import { describe, expect, it } from 'vitest'
import {
  GRACE_KEY_LIFETIME_MS,
  type GraceKeyDirectory,
  KmsGraceKeys,
} from '../../functions/adapters/kms-grace-keys.js'
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

/** The directory every container of one deployment shares (the table, in AWS). */
class Directory implements GraceKeyDirectory {
  readonly entries = new Map<string, string>()
  saves = 0
  async saveGraceKey(ref: string, wrapped: string): Promise<void> {
    this.saves++
    this.entries.set(ref, wrapped)
  }
  async findGraceKey(ref: string): Promise<string | undefined> {
    return this.entries.get(ref)
  }
}

const shared = new Directory()
const container = (
  kms: FakeKms,
  keyId = GRACE_KEY_ALIAS,
  directory: GraceKeyDirectory = shared,
  now?: () => number,
) => new KmsGraceKeys({ client: kms.client, keyId, directory, ...(now && { now }) })

describe('KmsGraceKeys: the server half of the grace seals, as KMS data keys', () => {
  it('asks KMS for one AES-256 data key per container, bound to its purpose, however many seals', async () => {
    const kms = new FakeKms()
    const keys = container(kms)
    const [a, b] = await Promise.all([keys.current(), keys.current()])
    expect(await keys.current()).toBe(a)
    expect(b).toBe(a)
    expect(a.secret).toHaveLength(32)
    // A short reference, not the wrapped key: the session item stays small.
    expect(a.name).toMatch(/^[A-Za-z0-9_-]{22}$/)
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
    const locator = { sub: newUserId(), sid }
    const parent = newRefreshToken(locator)
    const child = newRefreshToken(locator)
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

  it('stores the wrapped key under its reference before the first seal, and only the wrapped key', async () => {
    const kms = new FakeKms()
    const directory = new Directory()
    const key = await container(kms, GRACE_KEY_ALIAS, directory).current()
    const wrapped = directory.entries.get(key.name) as string
    expect(wrapped).toBeDefined()
    expect(Buffer.from(wrapped, 'base64url').includes(Buffer.from(key.secret))).toBe(false)
  })

  it('opens nothing for a reference the directory does not hold, or holds for another key', async () => {
    const kms = new FakeKms()
    const directory = new Directory()
    const key = await container(kms, GRACE_KEY_ALIAS, directory).current()
    const other = await container(kms, GRACE_KEY_ALIAS, directory).current()
    // An entry swapped for another key's wrapped key opens nothing.
    directory.entries.set(key.name, directory.entries.get(other.name) as string)
    expect(await container(kms, GRACE_KEY_ALIAS, directory).open(key.name)).toBeUndefined()
    expect(await container(kms, GRACE_KEY_ALIAS, directory).open('A'.repeat(22))).toBeUndefined()
  })

  it('seals under a new data key once an hour, and the old one still opens', async () => {
    const kms = new FakeKms()
    let now = 1_000_000
    const keys = container(kms, GRACE_KEY_ALIAS, shared, () => now)
    const first = await keys.current()
    now += GRACE_KEY_LIFETIME_MS - 1
    expect(await keys.current()).toBe(first)
    now += 1
    const second = await keys.current()
    expect(second.name).not.toBe(first.name)
    expect(kms.generateDataKeyCalls()).toHaveLength(2)
    expect(await keys.open(first.name)).toEqual(first.secret)
  })

  it('still opens a seal made before issue 17, which names the wrapped key itself', async () => {
    const kms = new FakeKms()
    const { CiphertextBlob, Plaintext } = await kms.client.send(
      new GenerateDataKeyCommand({
        KeyId: GRACE_KEY_ALIAS,
        KeySpec: 'AES_256',
        EncryptionContext: { purpose: 'rotating-token-service grace child' },
      }),
    )
    const name = Buffer.from(CiphertextBlob as Uint8Array).toString('base64url')
    expect(await container(kms, GRACE_KEY_ALIAS, new Directory()).open(name)).toEqual(Plaintext)
  })
})
