import {
  createCipheriv,
  createDecipheriv,
  createHash,
  hkdfSync,
  randomBytes,
  randomUUID,
  timingSafeEqual,
} from 'node:crypto'

/**
 * Refresh tokens are opaque to clients: `rt1_<sub>.<sid>.<secret>`.
 *
 * - `rt1_` is a fixed prefix so that secret scanners can find leaked tokens.
 * - `<sub>.<sid>` is a non-secret locator: one batched read finds the user,
 *   the session and the token's record. Clients must not rely on it.
 * - `<secret>` is 32 bytes (256 bits) from the CSPRNG, base64url.
 *
 * Only the SHA-256 of the whole token is stored.
 */
export const REFRESH_TOKEN_PREFIX = 'rt1_'

const ID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
const SHAPE = new RegExp(
  `^${REFRESH_TOKEN_PREFIX}(${ID})\\.([A-Za-z0-9_-]{22})\\.([A-Za-z0-9_-]{43})$`,
)

export interface RefreshTokenLocator {
  readonly sub: string
  readonly sid: string
}

export const newSessionId = (): string => randomBytes(16).toString('base64url')
export const newUserId = (): string => randomUUID()

export function newRefreshToken(locator: RefreshTokenLocator): string {
  return `${REFRESH_TOKEN_PREFIX}${locator.sub}.${locator.sid}.${randomBytes(32).toString('base64url')}`
}

/** The locator of a well-formed token, or undefined for anything else. */
export function parseRefreshToken(token: string): RefreshTokenLocator | undefined {
  const match = SHAPE.exec(token)
  return match ? { sub: match[1] as string, sid: match[2] as string } : undefined
}

export const hashToken = (token: string): string =>
  createHash('sha256').update(token, 'utf8').digest('base64url')

export function sameHash(a: string, b: string | undefined): boolean {
  if (b === undefined) return false
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/*
 * Grace replay (docs/design.md rule 2): the child token is kept sealed under a key
 * that only a holder of the parent can derive, so a stolen table copy reveals
 * no usable token. Key = HKDF-SHA256(parent token, salt = sid, info), then
 * AES-256-GCM with a random 96-bit IV, the sid as additional data.
 * Sealed form: `v1.<iv>.<ciphertext>.<tag>` (base64url parts).
 */
const HKDF_INFO = 'rotating-token-service grace child v1'

function graceKey(parentToken: string, sid: string): Buffer {
  return Buffer.from(hkdfSync('sha256', parentToken, sid, HKDF_INFO, 32))
}

export function sealChild(parentToken: string, sid: string, childToken: string): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', graceKey(parentToken, sid), iv)
  cipher.setAAD(Buffer.from(sid))
  const ciphertext = Buffer.concat([cipher.update(childToken, 'utf8'), cipher.final()])
  return ['v1', iv, ciphertext, cipher.getAuthTag()]
    .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
    .join('.')
}

/** The child token, or undefined if this parent cannot open the seal. */
export function openChild(parentToken: string, sid: string, sealed: string): string | undefined {
  const [version, iv, ciphertext, tag] = sealed.split('.')
  if (version !== 'v1' || !iv || !ciphertext || !tag) return undefined
  try {
    const decipher = createDecipheriv(
      'aes-256-gcm',
      graceKey(parentToken, sid),
      Buffer.from(iv, 'base64url'),
    )
    decipher.setAAD(Buffer.from(sid))
    decipher.setAuthTag(Buffer.from(tag, 'base64url'))
    return Buffer.concat([
      decipher.update(Buffer.from(ciphertext, 'base64url')),
      decipher.final(),
    ]).toString('utf8')
  } catch {
    return undefined
  }
}
