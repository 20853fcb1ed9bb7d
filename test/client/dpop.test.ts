import { generateKeyPairSync, sign, verify, type webcrypto } from 'node:crypto'
import {
  calculateJwkThumbprint,
  decodeJwt,
  decodeProtectedHeader,
  EmbeddedJWK,
  jwtVerify,
} from 'jose'
import { afterEach, describe, expect, it } from 'vitest'
import {
  createDpop,
  createDpopProof,
  type DpopKey,
  type DpopKeyStore,
  type EcPublicJwk,
  ecdsaDerToRaw,
  indexedDbDpopKeyStore,
  jwkThumbprint,
  memoryDpopKeyStore,
} from '../../client/dpop.js'
import { accessTokenHash, DpopVerifier } from '../../functions/core/dpop.js'
import { DpopNonces } from '../../functions/core/dpop-nonce.js'
import { FakeClock } from '../support/clock.js'

/**
 * The client's DPoP keys and proofs in Node (WebCrypto is built in), checked
 * by the server's own verifier (functions/core/dpop.ts) and by jose.
 * IndexedDB is a small stand-in here (the same contract as the browser's for
 * the calls the store makes: get, add that refuses a taken key, delete), so
 * that two "tabs" can race to create the key.
 */

const URI = 'https://auth.example.test/token'
const clock = new FakeClock()
const server = new DpopVerifier(clock)

/** IndexedDB for one origin: databases of object stores of structured clones, async requests. */
class FakeIndexedDb {
  readonly databases = new Map<string, Map<string, Map<string, unknown>>>()

  open(name: string, version: number) {
    const request = this.#request<unknown>()
    setTimeout(() => {
      const existing = this.databases.get(name)
      const stores = existing ?? new Map<string, Map<string, unknown>>()
      const db = {
        createObjectStore: (store: string) => stores.set(store, new Map()),
        transaction: (store: string) => ({ objectStore: () => this.#objectStore(stores, store) }),
        close: () => {},
      }
      request.result = db
      if (!existing) {
        expect(version).toBe(1)
        this.databases.set(name, stores)
        request.onupgradeneeded?.()
      }
      request.onsuccess?.()
    })
    return request
  }

  #objectStore(stores: Map<string, Map<string, unknown>>, name: string) {
    const store = stores.get(name)
    if (!store) throw new Error(`NotFoundError: no object store ${name}`)
    const answer = <T>(work: () => T) => {
      const request = this.#request<T>()
      setTimeout(() => {
        try {
          request.result = work()
          request.onsuccess?.()
        } catch (error) {
          request.error = error
          request.onerror?.()
        }
      })
      return request
    }
    return {
      get: (key: string) => answer(() => structuredClone(store.get(key))),
      add: (value: unknown, key: string) =>
        answer(() => {
          if (store.has(key))
            throw Object.assign(new Error('key exists'), { name: 'ConstraintError' })
          store.set(key, structuredClone(value))
          return key
        }),
      delete: (key: string) => answer(() => void store.delete(key)),
    }
  }

  #request<T>() {
    return {
      result: undefined as T | undefined,
      error: undefined as unknown,
      onsuccess: null as (() => void) | null,
      onerror: null as (() => void) | null,
      onupgradeneeded: null as (() => void) | null,
    }
  }
}

afterEach(() => {
  delete (globalThis as { indexedDB?: unknown }).indexedDB
})

describe('client DPoP proofs', () => {
  it('are accepted by the server verifier, bound to the thumbprint the client reports', async () => {
    const dpop = createDpop({ store: memoryDpopKeyStore(), now: () => clock.now() })
    const proof = await dpop.proof({ htm: 'POST', htu: URI })
    const verified = server.verify(proof, { method: 'POST', uri: URI })
    expect(verified.jkt).toBe(await dpop.thumbprint())
    expect(verified.iat).toBe(Math.floor(clock.now() / 1000))
    expect(verified.jti).toMatch(/^[A-Za-z0-9_-]{22}$/)
  })

  it('are accepted by jose, and the thumbprint is the one jose computes', async () => {
    const dpop = createDpop({ store: memoryDpopKeyStore() })
    const proof = await dpop.proof({ htm: 'GET', htu: 'https://api.example.test/me' })
    const { protectedHeader, payload } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt' })
    expect(protectedHeader.alg).toBe('ES256')
    expect(Object.keys(protectedHeader.jwk ?? {}).sort()).toEqual(['crv', 'kty', 'x', 'y'])
    expect(await calculateJwkThumbprint(protectedHeader.jwk as never)).toBe(await dpop.thumbprint())
    expect(payload).toMatchObject({ htm: 'GET', htu: 'https://api.example.test/me' })
  })

  it('carry a new jti each time, the same key, and htu without query or fragment', async () => {
    const dpop = createDpop({ store: memoryDpopKeyStore(), now: () => clock.now() })
    const proofs = await Promise.all(
      Array.from({ length: 5 }, () => dpop.proof({ htm: 'POST', htu: `${URI}?a=1#frag` })),
    )
    const checked = proofs.map((proof) => server.verify(proof, { method: 'POST', uri: URI }))
    expect(new Set(checked.map((proof) => proof.jti)).size).toBe(5)
    expect(new Set(checked.map((proof) => proof.jkt)).size).toBe(1)
    expect(decodeJwt(proofs[0] as string).htu).toBe(URI)
  })

  it('carry ath for an access token and the nonce the server gave, and pass its checks', async () => {
    const nonces = new DpopNonces(new Uint8Array(32).fill(7), clock)
    const dpop = createDpop({ store: memoryDpopKeyStore(), now: () => clock.now() })
    const accessToken = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln'
    const proof = await dpop.proof({
      htm: 'GET',
      htu: 'https://api.example.test/me',
      accessToken,
      nonce: nonces.issue(),
    })
    expect(decodeJwt(proof).ath).toBe(accessTokenHash(accessToken))
    const verified = server.verify(proof, {
      method: 'GET',
      uri: 'https://api.example.test/me',
      accessToken,
      nonces,
    })
    expect(verified.nonce).toBe(nonces.issue())
  })

  it('are refused by the server for another request than the one they were made for', async () => {
    const dpop = createDpop({ store: memoryDpopKeyStore(), now: () => clock.now() })
    const proof = await dpop.proof({ htm: 'POST', htu: URI })
    expect(() =>
      server.verify(proof, { method: 'POST', uri: 'https://auth.example.test/login' }),
    ).toThrow('htu does not match')
    expect(() => server.verify(proof, { method: 'GET', uri: URI })).toThrow('htm does not match')
  })
})

describe('client DPoP keys', () => {
  it('are made once for concurrent first proofs, and a new one after clear (logout)', async () => {
    const dpop = createDpop({ store: memoryDpopKeyStore() })
    const jkts = await Promise.all(Array.from({ length: 4 }, () => dpop.thumbprint()))
    expect(new Set(jkts).size).toBe(1)
    await dpop.clear()
    expect(await dpop.thumbprint()).not.toBe(jkts[0])
  })

  it('are kept in IndexedDB as a non-extractable key pair, and survive a reload', async () => {
    const idb = new FakeIndexedDb()
    ;(globalThis as { indexedDB?: unknown }).indexedDB = idb
    const first = createDpop()
    const jkt = await first.thumbprint()
    const stored = idb.databases.get('rotating-token-service')?.get('keys')?.get('dpop') as {
      privateKey: webcrypto.CryptoKey
      publicKey: webcrypto.CryptoKey
    }
    expect(stored.privateKey.extractable).toBe(false)
    await expect(crypto.subtle.exportKey('jwk', stored.privateKey)).rejects.toThrow()
    // A reload: a new handle and store over the same database find the same key.
    expect(await createDpop().thumbprint()).toBe(jkt)
  })

  it('are shared by the tabs of an origin, even when two tabs create one at the same time', async () => {
    ;(globalThis as { indexedDB?: unknown }).indexedDB = new FakeIndexedDb()
    const tabs = [createDpop(), createDpop(), createDpop()]
    const jkts = await Promise.all(tabs.map((tab) => tab.thumbprint()))
    expect(new Set(jkts).size).toBe(1)
    // A logout in one tab deletes the key for all: the next proof anywhere makes a new one.
    await tabs[0]?.clear()
    const next = await tabs[1]?.thumbprint()
    expect(next).not.toBe(jkts[0])
    expect(await tabs[2]?.thumbprint()).toBe(next)
  })

  it('keep apart the keys of differently named stores', async () => {
    ;(globalThis as { indexedDB?: unknown }).indexedDB = new FakeIndexedDb()
    const a = createDpop({ store: indexedDbDpopKeyStore({ name: 'app-a' }) })
    const b = createDpop({ store: indexedDbDpopKeyStore({ name: 'app-b' }) })
    expect(await a.thumbprint()).not.toBe(await b.thumbprint())
  })

  it('default to memory where there is no IndexedDB (Node)', async () => {
    const dpop = createDpop()
    const jkt = await dpop.thumbprint()
    expect(await dpop.thumbprint()).toBe(jkt)
    expect(await createDpop().thumbprint()).not.toBe(jkt)
  })
})

describe('a keystore adapter (React Native)', () => {
  /** A platform keystore that signs in DER, as iOS and Android do, over node:crypto here. */
  function derKeystore(): DpopKeyStore & { created: number } {
    let key: DpopKey | undefined
    const store = {
      created: 0,
      load: async () => key,
      async create() {
        const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' })
        const { kty, crv, x, y } = pair.publicKey.export({ format: 'jwk' })
        store.created++
        key = {
          publicJwk: { kty, crv, x, y } as EcPublicJwk,
          sign: async (data) => ecdsaDerToRaw(sign('sha256', data, pair.privateKey)),
        }
        return key
      },
      async remove() {
        key = undefined
      },
    }
    return store
  }

  it('signs proofs the server accepts, through ecdsaDerToRaw', async () => {
    const keystore = derKeystore()
    const dpop = createDpop({ store: keystore, now: () => clock.now() })
    for (let i = 0; i < 20; i++) {
      const proof = await dpop.proof({ htm: 'POST', htu: URI })
      expect(server.verify(proof, { method: 'POST', uri: URI }).jkt).toBe(await dpop.thumbprint())
    }
    expect(keystore.created).toBe(1)
  })

  it('converts DER signatures whose r or s are short or carry a sign byte', () => {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    let signBytes = 0
    for (let i = 0; i < 200; i++) {
      const data = Buffer.from(`message ${i}`)
      const der = sign('sha256', data, pair.privateKey)
      if (der.length > 70) signBytes++
      const raw = ecdsaDerToRaw(der)
      expect(raw).toHaveLength(64)
      expect(verify('sha256', data, { key: pair.publicKey, dsaEncoding: 'ieee-p1363' }, raw)).toBe(
        true,
      )
    }
    expect(signBytes).toBeGreaterThan(0)
    // r = 1 (one byte) and s with a sign byte: padded to 32 bytes each.
    const s = Buffer.alloc(32, 0xff)
    const der = Buffer.from([0x30, 0x26, 0x02, 0x01, 0x01, 0x02, 0x21, 0x00, ...s])
    expect(Buffer.from(ecdsaDerToRaw(der))).toEqual(
      Buffer.concat([Buffer.alloc(31), Buffer.from([1]), s]),
    )
    expect(() => ecdsaDerToRaw(Buffer.from([0x31, 0x00]))).toThrow('not a DER ECDSA signature')
  })
})

describe('createDpopProof and jwkThumbprint', () => {
  it('sign exactly the header and claims RFC 9449 §4.2 lists', async () => {
    const store = memoryDpopKeyStore()
    const key = await store.create()
    const proof = await createDpopProof(
      key,
      { htm: 'DELETE', htu: 'https://API.example.test:443/x' },
      1_700_000_000_999,
    )
    expect(decodeProtectedHeader(proof)).toEqual({
      typ: 'dpop+jwt',
      alg: 'ES256',
      jwk: key.publicJwk,
    })
    expect(Object.keys(decodeJwt(proof)).sort()).toEqual(['htm', 'htu', 'iat', 'jti'])
    expect(decodeJwt(proof)).toMatchObject({
      htm: 'DELETE',
      htu: 'https://api.example.test/x',
      iat: 1_700_000_000,
    })
    expect(await jwkThumbprint(key.publicJwk)).toBe(await calculateJwkThumbprint(key.publicJwk))
  })
})
