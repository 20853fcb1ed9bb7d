import { mkdtemp, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { localNonceKey } from '../../local/nonce-key.js'

const freshDir = async () => join(await mkdtemp(join(tmpdir(), 'nonce-key-')), 'keys')

describe('local mode DPoP nonce key', () => {
  it('is created once, private to the user, and read back on the next start', async () => {
    const dir = await freshDir()
    const first = await localNonceKey(dir)
    expect(first).toHaveLength(32)
    expect((await stat(join(dir, 'dpop-nonce.key'))).mode & 0o777).toBe(0o600)
    expect(Buffer.from(await localNonceKey(dir)).equals(Buffer.from(first))).toBe(true)
  })

  it('is the same key for processes that start together', async () => {
    const dir = await freshDir()
    const keys = await Promise.all([1, 2, 3, 4].map(() => localNonceKey(dir)))
    for (const key of keys)
      expect(Buffer.from(key).equals(Buffer.from(keys[0] as Uint8Array))).toBe(true)
  })

  it('refuses a file too short to be a key, naming it', async () => {
    const dir = await freshDir()
    await localNonceKey(dir)
    await writeFile(join(dir, 'dpop-nonce.key'), 'c2hvcnQ\n')
    await expect(localNonceKey(dir)).rejects.toThrow(/dpop-nonce\.key must hold at least 32 bytes/)
  })
})
