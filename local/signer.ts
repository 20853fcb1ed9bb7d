import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  type KeyObject,
  randomUUID,
  sign,
} from 'node:crypto'
import { chmod, link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { calculateJwkThumbprint } from 'jose'
import { assertKeyFitsAlg } from '../functions/core/key-fit.js'
import type { GraceKeys, PublicJwk, Signer } from '../functions/core/ports.js'
import { LocalGraceKeys } from './grace-keys.js'

const KEY_FILE = 'signing-key.pem'
const generateKeyPairAsync = promisify(generateKeyPair)

/**
 * RS256 signer for local mode: an RSA key in `<dir>/signing-key.pem` (PKCS#8
 * PEM), generated on first use. Not for production: the key sits on disk.
 */
export class LocalSigner implements Signer {
  readonly alg = 'RS256' as const
  readonly #privateKey: KeyObject
  readonly #jwk: PublicJwk

  private constructor(privateKey: KeyObject, jwk: PublicJwk) {
    this.#privateKey = privateKey
    this.#jwk = jwk
  }

  /**
   * Loads the key in `dir`, or generates and stores one. Concurrent first opens
   * of the same dir agree: the first key to land on disk wins and every caller
   * uses the key read back from the file.
   */
  static async open(dir: string): Promise<LocalSigner> {
    const file = join(dir, KEY_FILE)
    const pem = (await readIfExists(file)) ?? (await createKeyFile(dir, file))
    let privateKey: KeyObject
    try {
      privateKey = createPrivateKey({ key: pem, format: 'pem' })
    } catch (cause) {
      throw new Error(`${file} is not a PEM private key`, { cause })
    }
    assertKeyFitsAlg(privateKey, 'RS256', file)
    const { n, e } = createPublicKey(privateKey).export({ format: 'jwk' })
    const publicJwk = { kty: 'RSA', n: String(n), e: String(e) }
    const kid = await calculateJwkThumbprint(publicJwk, 'sha256')
    return new LocalSigner(
      privateKey,
      Object.freeze({ ...publicJwk, kid, alg: 'RS256' as const, use: 'sig' as const }),
    )
  }

  async keyId(): Promise<string> {
    return this.#jwk.kid
  }

  async sign(signingInput: Uint8Array): Promise<Uint8Array> {
    return sign('sha256', signingInput, this.#privateKey)
  }

  async publicKeys(): Promise<PublicJwk[]> {
    return [this.#jwk]
  }

  /** Grace keys derived from this key, so that grace seals survive a restart as the key does. */
  graceKeys(): GraceKeys {
    return LocalGraceKeys.derivedFrom(this.#privateKey.export({ type: 'pkcs8', format: 'der' }))
  }
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw error
  }
}

/** Writes a new key to a private temp file, then moves it into place without clobbering. */
async function createKeyFile(dir: string, file: string): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const { privateKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 })
  const tmp = join(dir, `.${KEY_FILE}.${process.pid}.${randomUUID()}.tmp`)
  await writeFile(tmp, privateKey.export({ type: 'pkcs8', format: 'pem' }), {
    mode: 0o600,
    flag: 'wx',
  })
  try {
    await chmod(tmp, 0o600) // in case the umask took bits away from the mode we asked for
    try {
      // link() fails if the file exists, so a racing process cannot overwrite a key in use.
      await link(tmp, file)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'EEXIST') {
        // Another process won the race: use its key.
      } else if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS') {
        await rename(tmp, file) // no hard links on this file system: last one wins
      } else {
        throw error
      }
    }
  } finally {
    await unlink(tmp).catch(() => {})
  }
  // Read back what is on disk, so every racing process ends up with the same key.
  return readFile(file, 'utf8')
}
