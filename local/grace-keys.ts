import { createHash, hkdfSync, randomBytes } from 'node:crypto'
import type { GraceKey, GraceKeys } from '../functions/core/ports.js'

const HKDF_INFO = 'rotating-token-service local grace key v1'

/**
 * Local mode's grace keys: one secret in place of the KMS data keys
 * (functions/adapters/kms-grace-keys.ts), named by its fingerprint. Not for
 * production: local mode derives it from the local signing key on disk.
 */
export class LocalGraceKeys implements GraceKeys {
  readonly #key: GraceKey

  private constructor(secret: Uint8Array) {
    const fingerprint = createHash('sha256').update(secret).digest().subarray(0, 9)
    this.#key = { name: `local${fingerprint.toString('base64url')}`, secret }
  }

  /** A fresh secret, kept in memory: seals from before a restart no longer open. */
  static random(): LocalGraceKeys {
    return new LocalGraceKeys(randomBytes(32))
  }

  /** A secret derived (HKDF-SHA256) from key material that outlives restarts. */
  static derivedFrom(material: Uint8Array): LocalGraceKeys {
    return new LocalGraceKeys(Buffer.from(hkdfSync('sha256', material, '', HKDF_INFO, 32)))
  }

  async current(): Promise<GraceKey> {
    return this.#key
  }

  async open(name: string): Promise<Uint8Array | undefined> {
    return name === this.#key.name ? this.#key.secret : undefined
  }
}
