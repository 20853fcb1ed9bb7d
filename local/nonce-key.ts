import { randomBytes, randomUUID } from 'node:crypto'
import { link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { MIN_NONCE_KEY_BYTES } from '../functions/core/dpop-nonce.js'

const KEY_FILE = 'dpop-nonce.key'

/**
 * Local mode's DPoP nonce key, in place of the stack's KMS HMAC key: 32 random
 * bytes (base64url) in `<dir>/dpop-nonce.key`, next to the local signing key,
 * created on first use, so that nonces survive a restart. Racing first opens
 * agree on the first file to land.
 */
export async function localNonceKey(dir: string): Promise<Uint8Array> {
  const file = join(dir, KEY_FILE)
  const text = (await readIfExists(file)) ?? (await createKeyFile(dir, file))
  const key = Buffer.from(text.trim(), 'base64url')
  if (key.length < MIN_NONCE_KEY_BYTES) {
    throw new Error(`${file} must hold at least ${MIN_NONCE_KEY_BYTES} bytes, base64url`)
  }
  return key
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

/** A private temp file linked into place: a racing process never reads a half-written key. */
async function createKeyFile(dir: string, file: string): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const tmp = join(dir, `.${KEY_FILE}.${process.pid}.${randomUUID()}.tmp`)
  await writeFile(tmp, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' })
  try {
    await link(tmp, file)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    // No hard links on this file system: the last one wins (as local/signer.ts does).
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS') await rename(tmp, file)
    else if (code !== 'EEXIST') throw error
  } finally {
    await unlink(tmp).catch(() => {})
  }
  return readFile(file, 'utf8')
}
