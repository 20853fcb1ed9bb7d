import {
  createCipheriv,
  createDecipheriv,
  createHash,
  hkdfSync,
  randomBytes,
  randomUUID,
  timingSafeEqual,
} from 'node:crypto'
import type { GraceKey } from './ports.js'

/**
 * Refresh tokens are opaque to clients: `rt1_<sub>.<sid>.<secret>` with one
 * region, `rt2_<home>.<sub>.<sid>.<secret>` with several (docs/multi-region.md).
 *
 * - `rt1_`/`rt2_` are fixed prefixes so that secret scanners can find leaked tokens.
 * - `<home>.<sub>.<sid>` is a non-secret locator: the session's home region (its
 *   AWS name, so that reordering `regions` moves no session), then what one batched
 *   read needs to find the user, the session and the token's record. Clients must
 *   not rely on it. An `rt1_` token is homed in the primary region.
 * - `<secret>` is 32 bytes (256 bits) from the CSPRNG, base64url.
 *
 * Only the SHA-256 of the whole token is stored.
 */
export const REFRESH_TOKEN_PREFIX = 'rt1_'
/** The prefix of a token that names its session's home region. */
export const HOMED_REFRESH_TOKEN_PREFIX = 'rt2_'

const ID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
/** An AWS region name, as lib/config.ts accepts it in `regions`. */
const HOME = '[a-z]{2}(?:-[a-z]+)+-\\d{1,2}'
const SHAPE = new RegExp(
  `^(?:${REFRESH_TOKEN_PREFIX}|${HOMED_REFRESH_TOKEN_PREFIX}(${HOME})\\.)(${ID})\\.([A-Za-z0-9_-]{22})\\.([A-Za-z0-9_-]{43})$`,
)

export interface RefreshTokenLocator {
  readonly sub: string
  readonly sid: string
  /** The session's home region; undefined for an `rt1_` token (the primary's, or one region). */
  readonly home?: string
}

export const newSessionId = (): string => randomBytes(16).toString('base64url')
export const newUserId = (): string => randomUUID()

export function newRefreshToken(locator: RefreshTokenLocator): string {
  const prefix =
    locator.home === undefined
      ? REFRESH_TOKEN_PREFIX
      : `${HOMED_REFRESH_TOKEN_PREFIX}${locator.home}.`
  return `${prefix}${locator.sub}.${locator.sid}.${randomBytes(32).toString('base64url')}`
}

/** The locator of a well-formed token, or undefined for anything else. */
export function parseRefreshToken(token: string): RefreshTokenLocator | undefined {
  const match = SHAPE.exec(token)
  if (!match) return undefined
  const [, home, sub, sid] = match as unknown as [string, string | undefined, string, string]
  return home === undefined ? { sub, sid } : { sub, sid, home }
}

/**
 * The region that decides a token's refreshes: the home it names, an `rt1_` token's
 * the primary (`regions[0]`). Undefined with one region (`regions` empty).
 */
export function homeOf(
  locator: RefreshTokenLocator,
  regions: readonly string[],
): string | undefined {
  return locator.home ?? regions[0]
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
 * Grace replay (docs/design.md "Grace child"): the child token is kept sealed
 * under a key that needs both the parent token and a secret of the server's
 * (GraceKeys: a KMS data key), so that neither a copy of the table plus an old
 * parent (a request log), nor the server's key alone, opens it; and the server
 * opens it only within the grace window.
 * Key = HKDF-SHA256(parent token, salt = server secret, info + sid), then
 * AES-256-GCM with a random 96-bit IV, the sid as additional data.
 * Sealed form: `v3.<key name>.<iv>.<ciphertext>.<tag>` (base64url parts). The
 * child has its parent's locator, so only its 32-byte secret is sealed; the
 * key name is a short reference to the server's key (GraceKeys), so that the
 * session item stays small.
 * Older seals still open, so that an upgrade breaks no grace replay:
 * `v2.<key name>.<iv>.<ciphertext>.<tag>` (before issue 17: the whole child
 * sealed, the key name the KMS-wrapped key itself) and `v1.<iv>.<ciphertext>.<tag>`
 * (before issue 12: HKDF of the parent alone, salt = sid).
 */
const HKDF_INFO_V1 = 'rotating-token-service grace child v1'
const HKDF_INFO_V2 = 'rotating-token-service grace child v2'
const HKDF_INFO_V3 = 'rotating-token-service grace child v3'

function keyV1(parentToken: string, sid: string): Buffer {
  return Buffer.from(hkdfSync('sha256', parentToken, sid, HKDF_INFO_V1, 32))
}

function serverKeyed(info: string, parentToken: string, sid: string, serverSecret: Uint8Array) {
  return Buffer.from(hkdfSync('sha256', parentToken, serverSecret, `${info} ${sid}`, 32))
}

const base64url = (part: Uint8Array) => Buffer.from(part).toString('base64url')

/** The secret part of a well-formed token (its last 43 characters), as bytes. */
const secretOf = (token: string): Buffer => Buffer.from(token.slice(-43), 'base64url')

/**
 * Seals `childToken` under `parentToken` and the server's current key
 * (GraceKeys `current`). The child must carry the parent's locator, as every
 * rotation's child does.
 */
export function sealChild(
  parentToken: string,
  sid: string,
  childToken: string,
  serverKey: GraceKey,
): string {
  const iv = randomBytes(12)
  const key = serverKeyed(HKDF_INFO_V3, parentToken, sid, serverKey.secret)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  if (childToken.slice(0, -43) !== parentToken.slice(0, -43)) {
    // An adoption (docs/multi-region.md): the child is homed in the adopter, the parent in
    // the lost home; the rest of the locator is the same. `v4` names the child's home.
    const parent = parseRefreshToken(parentToken)
    const child = parseRefreshToken(childToken)
    if (!child?.home || child.sub !== parent?.sub || child.sid !== parent.sid) {
      throw new Error('a grace child carries its parent’s locator')
    }
    cipher.setAAD(Buffer.from(`${sid} ${child.home}`))
    const ciphertext = Buffer.concat([cipher.update(secretOf(childToken)), cipher.final()])
    return [
      'v4',
      serverKey.name,
      child.home,
      ...[iv, ciphertext, cipher.getAuthTag()].map(base64url),
    ].join('.')
  }
  cipher.setAAD(Buffer.from(sid))
  const ciphertext = Buffer.concat([cipher.update(secretOf(childToken)), cipher.final()])
  return ['v3', serverKey.name, ...[iv, ciphertext, cipher.getAuthTag()].map(base64url)].join('.')
}

/** The name of the server key a seal needs (GraceKeys `open`); undefined for a v1 seal. */
export function sealKeyName(sealed: string): string | undefined {
  const [version, name] = sealed.split('.')
  return (version === 'v2' || version === 'v3' || version === 'v4') && name ? name : undefined
}

/**
 * The child token, or undefined if this parent (with, for a v2 or v3 seal,
 * the secret its key name stands for) cannot open the seal.
 */
export function openChild(
  parentToken: string,
  sid: string,
  sealed: string,
  serverSecret?: Uint8Array,
): string | undefined {
  const parts = sealed.split('.')
  const [version] = parts
  const [iv, ciphertext, tag] = parts.slice(-3)
  const key =
    version === 'v1' && parts.length === 4
      ? keyV1(parentToken, sid)
      : version === 'v2' && parts.length === 5 && serverSecret
        ? serverKeyed(HKDF_INFO_V2, parentToken, sid, serverSecret)
        : (version === 'v3' && parts.length === 5) || (version === 'v4' && parts.length === 6)
          ? serverSecret && serverKeyed(HKDF_INFO_V3, parentToken, sid, serverSecret)
          : undefined
  if (!key || !iv || !ciphertext || !tag) return undefined
  // v4: the adopted child's home, bound to the seal.
  const home = version === 'v4' ? parts[2] : undefined
  let opened: Buffer
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'))
    decipher.setAAD(Buffer.from(home === undefined ? sid : `${sid} ${home}`))
    decipher.setAuthTag(Buffer.from(tag, 'base64url'))
    opened = Buffer.concat([
      decipher.update(Buffer.from(ciphertext, 'base64url')),
      decipher.final(),
    ])
  } catch {
    return undefined
  }
  if (version !== 'v3' && version !== 'v4') return opened.toString('utf8')
  if (opened.length !== 32) return undefined
  // The child's locator is its parent's (v4: homed in the adopter).
  if (home === undefined) return `${parentToken.slice(0, -43)}${base64url(opened)}`
  const parent = parseRefreshToken(parentToken)
  return parent && newRefreshTokenWith({ ...parent, home }, base64url(opened))
}

function newRefreshTokenWith(locator: RefreshTokenLocator, secret: string): string {
  return `${HOMED_REFRESH_TOKEN_PREFIX}${locator.home}.${locator.sub}.${locator.sid}.${secret}`
}
