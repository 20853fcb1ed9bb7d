/**
 * The React Native adapters (client/react-native.ts) against mocks of the native modules
 * they target: react-native-keychain and @pagopa/io-react-native-crypto, answering as the
 * libraries do (a generic-password entry per service; an EC P-256 JWK, DER signatures in
 * base64, errors with a code). Then the token client on them, against the real HTTP API.
 */
import { createPublicKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { jwkThumbprint } from '../../client/dpop.js'
import { createDpop, createTokenClient } from '../../client/index.js'
import {
  type HardwareKeyModule,
  type KeychainModule,
  keychainStorage,
  keystoreDpopKeyStore,
} from '../../client/react-native.js'
import type { ClientConfig } from '../../functions/core/clients.js'
import { testFetch } from '../support/client-fetch.js'
import { type Harness, PASSWORD, startHarness } from '../support/harness.js'

/** react-native-keychain's generic passwords, one per `service`, as its native module keeps them. */
function mockKeychain() {
  const entries = new Map<string, { username: string; password: string; accessible?: string }>()
  const keychain: KeychainModule = {
    async getGenericPassword({ service }) {
      const entry = entries.get(service)
      return entry ? { ...entry, service, storage: 'keychain' } : false
    },
    async setGenericPassword(username, password, { service, accessible }) {
      entries.set(service, { username, password, ...(accessible && { accessible }) })
      return { service, storage: 'keychain' }
    },
    async resetGenericPassword({ service }) {
      return entries.delete(service)
    },
  }
  return { keychain, entries }
}

class CryptoError extends Error {
  constructor(readonly code: string) {
    super(code)
  }
}

/**
 * @pagopa/io-react-native-crypto's native module: EC P-256 keys by tag that never leave
 * it, public keys as JWKs, `sign` answering a DER signature in base64 (as SecKey and
 * java.security.Signature both do).
 */
function mockHardwareKeys() {
  const keys = new Map<string, { privateKey: KeyObject; publicKey: KeyObject }>()
  const jwkOf = (tag: string) => {
    const { kty, crv, x, y } = (keys.get(tag) as { publicKey: KeyObject }).publicKey.export({
      format: 'jwk',
    })
    return { kty: kty as string, crv, x, y }
  }
  const crypto: HardwareKeyModule = {
    async generate(tag) {
      if (keys.has(tag)) throw new CryptoError('KEY_ALREADY_EXISTS')
      keys.set(tag, generateKeyPairSync('ec', { namedCurve: 'P-256' }))
      return jwkOf(tag)
    },
    async getPublicKey(tag) {
      if (!keys.has(tag)) throw new CryptoError('PUBLIC_KEY_NOT_FOUND')
      return jwkOf(tag)
    },
    async sign(message, tag) {
      const key = keys.get(tag)
      if (!key) throw new CryptoError('PUBLIC_KEY_NOT_FOUND')
      return sign('sha256', Buffer.from(message, 'utf8'), key.privateKey).toString('base64')
    },
    async deleteKey(tag) {
      if (!keys.delete(tag)) throw new CryptoError('PUBLIC_KEY_NOT_FOUND')
      return true
    },
  }
  return { crypto, keys }
}

describe('keychainStorage (react-native-keychain)', () => {
  it('keeps each storage key as its own entry, on this device only, and removes it', async () => {
    const { keychain, entries } = mockKeychain()
    const storage = keychainStorage(keychain)
    expect(await storage.getItem('rotating-token.app.refresh_token')).toBeNull()
    await storage.setItem('rotating-token.app.refresh_token', 'a refresh token')
    expect(entries.get('rotating-token.app.refresh_token')).toEqual({
      username: 'refresh_token',
      password: 'a refresh token',
      accessible: 'AccessibleAfterFirstUnlockThisDeviceOnly',
    })
    expect(await storage.getItem('rotating-token.app.refresh_token')).toBe('a refresh token')
    expect(await storage.getItem('another key')).toBeNull()
    await storage.removeItem('rotating-token.app.refresh_token')
    expect(entries.size).toBe(0)
  })

  it('takes another accessibility class', async () => {
    const { keychain, entries } = mockKeychain()
    await keychainStorage(keychain, { accessible: 'AccessibleWhenUnlockedThisDeviceOnly' }).setItem(
      'k',
      'v',
    )
    expect(entries.get('k')?.accessible).toBe('AccessibleWhenUnlockedThisDeviceOnly')
  })
})

describe('keystoreDpopKeyStore (@pagopa/io-react-native-crypto)', () => {
  it('has no key until one is created, then loads the same one; remove deletes it', async () => {
    const { crypto, keys } = mockHardwareKeys()
    const store = keystoreDpopKeyStore(crypto)
    expect(await store.load()).toBeUndefined()
    const created = await store.create()
    expect(keys.has('rotating-token-service.dpop')).toBe(true)
    expect((await store.load())?.publicJwk).toEqual(created.publicJwk)
    await store.remove()
    expect(keys.size).toBe(0)
    await store.remove() // nothing left: no error
  })

  it('signs proofs whose DER signatures become JWS signatures that verify with the public JWK', async () => {
    const { crypto } = mockHardwareKeys()
    const dpop = createDpop({ store: keystoreDpopKeyStore(crypto, { keyTag: 'app.dpop' }) })
    const proof = await dpop.proof({ htm: 'POST', htu: 'https://auth.example.com/token?x=1' })
    const [header, payload, signature] = proof.split('.') as [string, string, string]
    const { jwk, typ, alg } = JSON.parse(Buffer.from(header, 'base64url').toString())
    expect({ typ, alg }).toEqual({ typ: 'dpop+jwt', alg: 'ES256' })
    expect(JSON.parse(Buffer.from(payload, 'base64url').toString())).toMatchObject({
      htm: 'POST',
      htu: 'https://auth.example.com/token',
    })
    const raw = Buffer.from(signature, 'base64url')
    expect(raw.length).toBe(64)
    const verified = await globalThis.crypto.subtle.verify(
      { name: 'ECDSA', hash: 'SHA-256' },
      await globalThis.crypto.subtle.importKey(
        'jwk',
        createPublicKey({ key: jwk, format: 'jwk' }).export({ format: 'jwk' }),
        { name: 'ECDSA', namedCurve: 'P-256' },
        false,
        ['verify'],
      ),
      raw,
      Buffer.from(`${header}.${payload}`),
    )
    expect(verified).toBe(true)
    expect(await dpop.thumbprint()).toBe(await jwkThumbprint(jwk))
  })

  it('takes the key another caller created first', async () => {
    const { crypto } = mockHardwareKeys()
    const [one, two] = await Promise.all([
      keystoreDpopKeyStore(crypto).create(),
      keystoreDpopKeyStore(crypto).create(),
    ])
    expect(one.publicJwk).toEqual(two.publicJwk)
  })

  it('passes on any other failure of the native module', async () => {
    const { crypto } = mockHardwareKeys()
    const failing = {
      ...crypto,
      getPublicKey: () => Promise.reject(new CryptoError('KEYCHAIN_LOAD_FAILED')),
    }
    await expect(keystoreDpopKeyStore(failing).load()).rejects.toThrow('KEYCHAIN_LOAD_FAILED')
  })
})

describe('the token client on both adapters, against the HTTP API', () => {
  const APP: ClientConfig = {
    client_id: 'test-react-native-app',
    type: 'native',
    audience: 'https://api.test',
    scopes: ['openid', 'api'],
  }
  let h: Harness
  beforeAll(async () => {
    h = await startHarness({ clients: [APP] })
  })
  afterAll(() => h?.close())

  it('logs in with DPoP, resumes from the keychain after a restart, and leaves nothing at logout', async () => {
    const { keychain, entries } = mockKeychain()
    const { crypto, keys } = mockHardwareKeys()
    const app = () =>
      createTokenClient({
        baseUrl: h.url,
        clientId: APP.client_id,
        fetch: testFetch(),
        storage: keychainStorage(keychain),
        dpop: createDpop({ store: keystoreDpopKeyStore(crypto) }),
        autoRefresh: false,
      })
    const user = await h.addUser()
    const first = app()
    await first.login(user.username, PASSWORD)
    const jkt = await first.dpopThumbprint()
    const me = await first.fetch('/me')
    expect(me.status).toBe(200)
    expect(((await me.json()) as { jkt?: string }).jkt).toBe(jkt)
    expect(entries.size).toBe(1)
    first.close()

    // The app restarts: the session comes back from the keychain, bound to the same key.
    const second = app()
    expect(await second.getAccessToken()).toEqual(expect.any(String))
    const again = await second.fetch('/me')
    expect(((await again.json()) as { jkt?: string }).jkt).toBe(jkt)
    await second.logout()
    expect(entries.size).toBe(0)
    expect(keys.size).toBe(0)
    second.close()
  })
})
