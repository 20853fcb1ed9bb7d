import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto'

/**
 * Password hashing with scrypt from node:crypto, stored as PHC strings:
 * `$scrypt$ln=17,r=8,p=1$<salt>$<hash>` (unpadded standard base64), so that the
 * parameters travel with the hash and can be raised later.
 */
export interface ScryptParams {
  /** log2 of the CPU/memory cost N. @default 17 (OWASP: N=2^17) */
  readonly ln: number
  /** Block size. @default 8 */
  readonly r: number
  /** Parallelism. @default 1 */
  readonly p: number
}

export const OWASP_SCRYPT: ScryptParams = { ln: 17, r: 8, p: 1 }

const KEY_LENGTH = 32
const SALT_LENGTH = 16
const PHC = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/

/** Passwords above this many UTF-8 bytes are refused before any hashing. */
export const MAX_PASSWORD_BYTES = 1024

function derive(password: string, salt: Buffer, params: ScryptParams, length: number) {
  const N = 2 ** params.ln
  // Node refuses N=2^17 with its default maxmem (32 MiB); scrypt needs 128*N*r*p bytes.
  const options: ScryptOptions = {
    N,
    r: params.r,
    p: params.p,
    maxmem: 256 * N * params.r * params.p,
  }
  return new Promise<Buffer>((resolve, reject) =>
    scrypt(password.normalize('NFC'), salt, length, options, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  )
}

const b64 = (bytes: Buffer) => bytes.toString('base64').replace(/=+$/, '')

export async function hashPassword(password: string, params = OWASP_SCRYPT): Promise<string> {
  const salt = randomBytes(SALT_LENGTH)
  const key = await derive(password, salt, params, KEY_LENGTH)
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${b64(salt)}$${b64(key)}`
}

/** True when the password matches. A malformed stored hash never matches. */
export async function verifyPassword(password: string, phc: string): Promise<boolean> {
  const match = PHC.exec(phc)
  if (!match) return false
  const [, ln, r, p, salt, hash] = match as unknown as [
    string,
    string,
    string,
    string,
    string,
    string,
  ]
  const expected = Buffer.from(hash, 'base64')
  const params = { ln: Number(ln), r: Number(r), p: Number(p) }
  if (params.ln < 10 || params.ln > 22 || expected.length < 16) return false
  const actual = await derive(password, Buffer.from(salt, 'base64'), params, expected.length)
  return timingSafeEqual(actual, expected)
}

/**
 * A valid hash of a random password. Checking an unknown username against it
 * costs the same as checking a wrong password, so timing reveals nothing.
 */
export function dummyHash(params = OWASP_SCRYPT): string {
  const filler = b64(randomBytes(KEY_LENGTH))
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${b64(randomBytes(SALT_LENGTH))}$${filler}`
}

/** Usernames compare case-insensitively after Unicode normalization. */
export const normalizeUsername = (username: string): string =>
  username.normalize('NFKC').trim().toLowerCase()

/** The longest username `users add` accepts, in characters after normalization. */
export const MAX_USERNAME_CHARS = 128

/**
 * The one username rule, after normalization: 1 to 128 letters, digits or
 * `. _ @ + -`, so never a lone surrogate (which DynamoDB refuses).
 */
const USERNAME = new RegExp(`^[\\p{L}\\p{N}._@+-]{1,${MAX_USERNAME_CHARS}}$`, 'u')

/**
 * True for a normalized name that some user could have: the rule `users add`
 * applies. Login answers any other name without a read, a hash or a throttle
 * record.
 */
export const couldBeUsername = (username: string): boolean => USERNAME.test(username)
