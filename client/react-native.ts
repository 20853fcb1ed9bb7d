/**
 * React Native adapters (`@rotating-token-service/client/react-native`): the
 * refresh token in the iOS Keychain or the Android Keystore, through
 * `react-native-keychain`, and the DPoP key in the Secure Enclave or the
 * Android Keystore, through `@pagopa/io-react-native-crypto`. Each takes the
 * native module as an argument, so that this package imports neither (no
 * runtime dependency) and a test can hand in a mock.
 */
import { type DpopKey, type DpopKeyStore, type EcPublicJwk, ecdsaDerToRaw } from './dpop.js'
import type { TokenStorage } from './storage.js'

/** The part of `react-native-keychain` (v6 to v10) that `keychainStorage` calls. */
export interface KeychainModule {
  getGenericPassword(options: { service: string }): Promise<false | { password: string }>
  setGenericPassword(
    username: string,
    password: string,
    options: { service: string; accessible?: string },
  ): Promise<unknown>
  resetGenericPassword(options: { service: string }): Promise<unknown>
}

export interface KeychainStorageOptions {
  /**
   * The iOS accessibility class (`Keychain.ACCESSIBLE.*`). The default keeps the
   * token on this device only (no iCloud Keychain, no backup) and readable by
   * a background refresh once the phone was unlocked after a restart.
   * @default 'AccessibleAfterFirstUnlockThisDeviceOnly'
   */
  readonly accessible?: string
}

/**
 * Token storage in the OS keystore: one generic-password entry per storage key
 * (the key is the entry's `service`). Pass `import * as Keychain from
 * 'react-native-keychain'`.
 */
export function keychainStorage(
  keychain: KeychainModule,
  options: KeychainStorageOptions = {},
): TokenStorage {
  const accessible = options.accessible ?? 'AccessibleAfterFirstUnlockThisDeviceOnly'
  return {
    async getItem(key) {
      const entry = await keychain.getGenericPassword({ service: key })
      return entry ? entry.password : null
    },
    async setItem(key, value) {
      await keychain.setGenericPassword('refresh_token', value, { service: key, accessible })
    },
    async removeItem(key) {
      await keychain.resetGenericPassword({ service: key })
    },
  }
}

/** A public key as `@pagopa/io-react-native-crypto` answers it (a JWK). */
export interface NativePublicKey {
  readonly kty: string
  readonly crv?: string
  readonly x?: string
  readonly y?: string
}

/** The part of `@pagopa/io-react-native-crypto` (v0.3 and later) that `keystoreDpopKeyStore` calls. */
export interface HardwareKeyModule {
  /** Creates an EC P-256 key under `keyTag` in the Secure Enclave or the Android Keystore. */
  generate(keyTag: string): Promise<NativePublicKey>
  getPublicKey(keyTag: string): Promise<NativePublicKey>
  /** SHA-256 with ECDSA over the UTF-8 of `message`; the signature in base64 (DER). */
  sign(message: string, keyTag: string): Promise<string>
  deleteKey(keyTag: string): Promise<unknown>
}

export interface KeystoreDpopOptions {
  /** The key's tag in the keystore; one per client if an app has several. @default 'rotating-token-service.dpop' */
  readonly keyTag?: string
}

/**
 * The DPoP key in the platform keystore: generated there, used there, never
 * exported (on iOS in the Secure Enclave; on Android in the Keystore, StrongBox
 * where the device has it). Pass `import * as Crypto from
 * '@pagopa/io-react-native-crypto'`, then `createDpop({ store })`.
 */
export function keystoreDpopKeyStore(
  crypto: HardwareKeyModule,
  options: KeystoreDpopOptions = {},
): DpopKeyStore {
  const keyTag = options.keyTag ?? 'rotating-token-service.dpop'
  const key = (publicKey: NativePublicKey): DpopKey => ({
    publicJwk: ecJwk(publicKey),
    async sign(data) {
      const signature = base64Bytes(await crypto.sign(latin1(data), keyTag))
      // Both keystores answer DER; a 64-byte answer is already R||S.
      return signature.length === 64 ? signature : ecdsaDerToRaw(signature)
    },
  })
  const load = async (): Promise<DpopKey | undefined> => {
    try {
      return key(await crypto.getPublicKey(keyTag))
    } catch (error) {
      if (codeOf(error) === 'PUBLIC_KEY_NOT_FOUND') return undefined
      throw error
    }
  }
  return {
    load,
    async create() {
      try {
        return key(await crypto.generate(keyTag))
      } catch (error) {
        // Created meanwhile (another call of this app): use that one.
        if (codeOf(error) !== 'KEY_ALREADY_EXISTS') throw error
        const existing = await load()
        if (!existing) throw error
        return existing
      }
    },
    async remove() {
      try {
        await crypto.deleteKey(keyTag)
      } catch (error) {
        if (codeOf(error) !== 'PUBLIC_KEY_NOT_FOUND') throw error
      }
    },
  }
}

/** The library rejects with the code as `code` or, in older versions, as `message`. */
function codeOf(error: unknown): string | undefined {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown }
  return typeof code === 'string' ? code : typeof message === 'string' ? message : undefined
}

function ecJwk(key: NativePublicKey): EcPublicJwk {
  if (key.kty !== 'EC' || key.crv !== 'P-256' || !key.x || !key.y) {
    throw new Error('the keystore answered a key that is not EC P-256')
  }
  return { kty: 'EC', crv: 'P-256', x: base64url(key.x), y: base64url(key.y) }
}

/** A JWK member in base64url without padding, whichever base64 the platform gave. */
const base64url = (value: string) =>
  value.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')

/** The proof's signing input is ASCII (base64url and dots): one char per byte. */
const latin1 = (data: Uint8Array) => String.fromCharCode(...data)

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

/** Base64 (standard or url, padded or not, line breaks ignored) to bytes; no `atob` in Hermes. */
function base64Bytes(text: string): Uint8Array {
  const clean = base64url(text.replace(/\s+/g, '')).replace(/-/g, '+').replace(/_/g, '/')
  const bytes = new Uint8Array(Math.floor((clean.length * 6) / 8))
  let bits = 0
  let value = 0
  let at = 0
  for (const char of clean) {
    const digit = ALPHABET.indexOf(char)
    if (digit < 0) throw new Error('the keystore answered a signature that is not base64')
    value = (value << 6) | digit
    bits += 6
    if (bits >= 8) {
      bits -= 8
      bytes[at++] = (value >> bits) & 0xff
    }
  }
  return bytes
}
