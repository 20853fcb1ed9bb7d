import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto'
import {
  calculateJwkThumbprint,
  EmbeddedJWK,
  exportJWK,
  generateKeyPair,
  jwtVerify,
  SignJWT,
} from 'jose'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  accessTokenHash,
  DPOP_ALGORITHMS,
  type DpopRequest,
  DpopVerifier,
  jwkThumbprint,
  normalizeHtu,
} from '../../functions/core/dpop.js'
import { DpopNonces } from '../../functions/core/dpop-nonce.js'
import { InvalidDpopProof, UseDpopNonce } from '../../functions/core/errors.js'
import { FakeClock } from '../support/clock.js'
import {
  hasHighS,
  jwsSignature,
  otherS,
  type ProofAlg,
  type ProofKey,
  proofClaims,
  proofKey,
  signProof,
} from '../support/dpop.js'
import { b64, b64url } from '../support/tokens.js'

const URI = 'https://auth.example.test/token'
const REQUEST: DpopRequest = { method: 'POST', uri: URI }

let clock: FakeClock
let verifier: DpopVerifier
const keys = {} as Record<ProofAlg, ProofKey>

beforeAll(() => {
  for (const alg of DPOP_ALGORITHMS) keys[alg] = proofKey(alg)
})

function fresh(): void {
  clock = new FakeClock()
  verifier = new DpopVerifier(clock)
}

const claims = (overrides: Record<string, unknown> = {}) => proofClaims(clock.now(), URI, overrides)

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/** The same bytes with a spare bit of the last character set: a second encoding of them. */
function withSpareBit(segment: string): string {
  const last = ALPHABET.indexOf(segment.at(-1) as string)
  return `${segment.slice(0, -1)}${ALPHABET[last | 1]}`
}

/** The check a refused proof failed, from its InvalidDpopProof. */
function refusal(proof: string, request: DpopRequest = REQUEST): string {
  try {
    verifier.verify(proof, request)
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidDpopProof)
    const refused = error as InvalidDpopProof
    expect(refused.status).toBe(400)
    expect(refused.error).toBe('invalid_dpop_proof')
    return refused.detail as string
  }
  throw new Error('the proof was accepted')
}

describe('a DPoP proof is accepted', () => {
  beforeAll(fresh)

  it.each(DPOP_ALGORITHMS)(
    'signed with %s, and answers its key thumbprint as jose computes it (RFC 7638)',
    async (alg) => {
      const key = keys[alg]
      const body = claims()
      const proof = verifier.verify(signProof(key, body), REQUEST)
      expect(proof).toEqual({
        jkt: await calculateJwkThumbprint(key.jwk as never),
        jti: body.jti,
        alg,
        iat: body.iat,
        acceptedUntil: (body.iat as number) * 1000 + 90_000,
      })
    },
  )

  it('signed by jose with its embedded jwk, the way third-party clients build them', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256')
    const jwk = await exportJWK(publicKey)
    const signed = await new SignJWT({ htm: 'POST', htu: URI, jti: 'jose-jti-1' })
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk })
      .setIssuedAt(Math.floor(clock.now() / 1000))
      .sign(privateKey)
    expect(verifier.verify(signed, REQUEST).jkt).toBe(await calculateJwkThumbprint(jwk))
  })

  it('with typ in any case, with or without application/', () => {
    const key = keys.ES256
    for (const typ of ['DPoP+JWT', 'application/dpop+jwt']) {
      expect(verifier.verify(signProof(key, claims(), { header: { typ } }), REQUEST).jti).toEqual(
        expect.any(String),
      )
    }
  })

  it('with a high-S ES256 signature (WebCrypto signs about half of them so), as the same proof', () => {
    const proof = signProof(keys.ES256, claims())
    const variant = otherS(proof)
    expect([hasHighS(proof), hasHighS(variant)].sort()).toEqual([false, true])
    const first = verifier.verify(proof, REQUEST)
    const second = verifier.verify(variant, REQUEST)
    // Same key, same jti: the replay store, keyed on them, refuses the second encoding.
    expect(second).toEqual(first)
  })

  it('whose htu equals the request URI after RFC 3986 normalization, ignoring query and fragment', () => {
    const key = keys.ES256
    const variants = [
      'HTTPS://Auth.Example.TEST/token',
      'https://auth.example.test:443/token',
      'https://auth.example.test/token?client_id=x#frag',
      'https://auth.example.test/a/../token',
      'https://auth.example.test/%74oken',
    ]
    for (const htu of variants) {
      expect(() => verifier.verify(signProof(key, claims({ htu })), REQUEST)).not.toThrow()
    }
    // The request side is normalized the same way.
    const request = { method: 'POST', uri: 'https://AUTH.example.test:443/./token?x=1' }
    expect(() => verifier.verify(signProof(key, claims()), request)).not.toThrow()
  })

  it('whose htu names any one of the endpoint’s URIs (the issuer’s, the one the request reached)', () => {
    const request = {
      method: 'POST',
      uri: ['https://auth.example.test/token', 'https://abc123.execute-api.test/token'],
    }
    for (const htu of request.uri) {
      expect(() => verifier.verify(signProof(keys.ES256, claims({ htu })), request)).not.toThrow()
    }
    expect(
      refusal(signProof(keys.ES256, claims({ htu: 'https://other.test/token' })), request),
    ).toBe('htu does not match the request')
  })

  it('with a jwk that names alg and use, as long as they agree', () => {
    const key = keys.ES256
    const jwk = { ...key.jwk, alg: 'ES256', use: 'sig', kid: 'any' }
    expect(() =>
      verifier.verify(signProof(key, claims(), { header: { jwk } }), REQUEST),
    ).not.toThrow()
    expect(refusal(signProof(key, claims(), { header: { jwk: { ...jwk, alg: 'RS256' } } }))).toBe(
      'jwk alg is not alg',
    )
    expect(refusal(signProof(key, claims(), { header: { jwk: { ...jwk, use: 'enc' } } }))).toBe(
      'jwk use is not sig',
    )
  })
})

describe('the proof header', () => {
  beforeAll(fresh)

  it('refuses a wrong or missing typ', () => {
    for (const typ of ['JWT', 'at+jwt', 'dpop', undefined]) {
      expect(refusal(signProof(keys.ES256, claims(), { header: { typ } }))).toBe(
        'typ is not dpop+jwt',
      )
    }
  })

  it('refuses alg none, HS256 (even with the MAC key in jwk) and algorithms we do not list', () => {
    const unsigned = `${b64({ typ: 'dpop+jwt', alg: 'none', jwk: keys.ES256.jwk })}.${b64(claims())}.`
    expect(refusal(unsigned)).toBe('not a compact JWS')
    const noneWithSignature = `${unsigned}${b64url(randomBytes(64))}`
    expect(refusal(noneWithSignature)).toBe('alg not allowed')

    const secret = randomBytes(32)
    const hsHeader = b64({ typ: 'dpop+jwt', alg: 'HS256', jwk: { kty: 'oct', k: b64url(secret) } })
    const hsInput = `${hsHeader}.${b64(claims())}`
    const hs = `${hsInput}.${b64url(createHmac('sha256', secret).update(hsInput).digest())}`
    expect(refusal(hs)).toBe('alg not allowed')

    for (const alg of ['PS256', 'ES384', 'RS512', 'ES256K']) {
      expect(refusal(signProof(keys.ES256, claims(), { header: { alg } }))).toBe('alg not allowed')
    }
  })

  it('refuses an algorithm the settings leave out', () => {
    const esOnly = new DpopVerifier(clock, { algorithms: ['ES256'] })
    expect(() => esOnly.verify(signProof(keys.RS256, claims()), REQUEST)).toThrow(
      'invalid DPoP proof: alg not allowed',
    )
  })

  it('refuses a jwk that carries a private key', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const cases: [ProofKey, Record<string, unknown>][] = [
      [keys.ES256, { ...ec.privateKey.export({ format: 'jwk' }) }],
      [keys.RS256, { ...rsa.privateKey.export({ format: 'jwk' }) }],
      [keys.ES256, { ...keys.ES256.jwk, d: b64url(randomBytes(32)) }],
      [keys.RS256, { ...keys.RS256.jwk, p: b64url(randomBytes(128)) }],
      [keys.EdDSA, { ...keys.EdDSA.jwk, d: b64url(randomBytes(32)) }],
    ]
    for (const [key, jwk] of cases) {
      expect(refusal(signProof(key, claims(), { header: { jwk } }))).toBe(
        'jwk carries a private key',
      )
    }
  })

  it('refuses a proof without a jwk, or with a key of the wrong kind for alg', () => {
    expect(refusal(signProof(keys.ES256, claims(), { header: { jwk: undefined } }))).toBe(
      'jwk missing',
    )
    expect(refusal(signProof(keys.ES256, claims(), { header: { jwk: 'a key' } }))).toBe(
      'jwk missing',
    )
    expect(refusal(signProof(keys.ES256, claims(), { header: { alg: 'RS256' } }))).toBe(
      'jwk is not RSA',
    )
    expect(refusal(signProof(keys.RS256, claims(), { header: { alg: 'ES256' } }))).toBe(
      'jwk is not P-256',
    )
    expect(refusal(signProof(keys.ES256, claims(), { header: { alg: 'EdDSA' } }))).toBe(
      'jwk is not Ed25519',
    )
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({
      format: 'jwk',
    })
    expect(refusal(signProof(keys.ES256, claims(), { header: { jwk: p384 } }))).toBe(
      'jwk is not P-256',
    )
  })

  it('refuses a key member that is not canonical, of the wrong size, or with a leading zero', () => {
    const ec = keys.ES256.jwk as { x: string; y: string }
    const rsa = keys.RS256.jwk as { n: string; e: string }
    const cases: [ProofKey, Record<string, unknown>, string][] = [
      [keys.ES256, { ...ec, x: `${ec.x}=` }, 'jwk x is not canonical base64url'],
      [
        keys.ES256,
        { ...ec, x: b64url(Buffer.from(ec.x, 'base64url').subarray(1)) },
        'jwk x has the wrong size',
      ],
      [keys.RS256, { ...rsa, e: 'AAEAAQ' }, 'jwk e has a leading zero'],
      [
        keys.RS256,
        { ...rsa, n: b64url(Buffer.concat([Buffer.alloc(1), Buffer.from(rsa.n, 'base64url')])) },
        'jwk n has a leading zero',
      ],
      [keys.RS256, { ...rsa, n: b64url(randomBytes(520)) }, 'jwk n has the wrong size'],
    ]
    for (const [key, jwk, reason] of cases) {
      expect(refusal(signProof(key, claims(), { header: { jwk } }))).toBe(reason)
    }
    // The last character of x carries 2 spare bits: setting one is another string for the same bytes.
    const x = withSpareBit(ec.x)
    expect(Buffer.from(x, 'base64url')).toEqual(Buffer.from(ec.x, 'base64url'))
    expect(refusal(signProof(keys.ES256, claims(), { header: { jwk: { ...ec, x } } }))).toBe(
      'jwk x is not canonical base64url',
    )
  })

  it('refuses an EC point off the curve and an RSA key under 2048 bits', () => {
    const ec = keys.ES256.jwk as { x: string; y: string }
    expect(refusal(signProof(keys.ES256, claims(), { header: { jwk: { ...ec, y: ec.x } } }))).toBe(
      'jwk is not a valid key',
    )
    const weak = proofKey('RS256', 1024)
    expect(refusal(signProof(weak, claims()))).toBe('jwk n has the wrong size')
  })

  it('refuses headers that point at another key or name extensions', () => {
    for (const member of ['jku', 'x5u', 'x5c', 'crit', 'b64']) {
      expect(refusal(signProof(keys.ES256, claims(), { header: { [member]: ['x'] } }))).toBe(
        `header carries ${member}`,
      )
    }
  })
})

describe('the proof signature', () => {
  beforeAll(fresh)

  it('refuses a proof signed by another key than its jwk', () => {
    for (const alg of DPOP_ALGORITHMS) {
      const other = proofKey(alg)
      expect(refusal(signProof(keys[alg], claims(), { signWith: other.privateKey }))).toBe(
        'signature does not verify with the jwk',
      )
    }
  })

  it('refuses a proof whose claims were changed after signing', () => {
    const proof = signProof(keys.ES256, claims())
    const [header, , signature] = proof.split('.')
    const forged = `${header}.${b64(claims({ htu: 'https://auth.example.test/token' }))}.${signature}`
    expect(refusal(forged)).toBe('signature does not verify with the jwk')
  })

  it('refuses a signature in a non-canonical encoding, or of the wrong length', () => {
    const proof = signProof(keys.RS256, claims())
    const [input, signature] = [
      proof.slice(0, proof.lastIndexOf('.')),
      proof.split('.')[2] as string,
    ]
    expect(refusal(`${input}.${withSpareBit(signature)}`)).toBe(
      'signature is not canonical base64url',
    )
    expect(refusal(`${proof}A`)).toBe('signature does not verify with the jwk')
    const es = signProof(keys.ES256, claims())
    const raw = Buffer.from(es.split('.')[2] as string, 'base64url')
    const tooLong = `${es.slice(0, es.lastIndexOf('.'))}.${b64url(Buffer.concat([raw, Buffer.alloc(8)]))}`
    expect(refusal(tooLong)).toBe('signature does not verify with the jwk')
  })

  it('refuses what is not one compact JWS: two headers joined, padding, oversize', () => {
    const proof = signProof(keys.ES256, claims())
    expect(refusal(`${proof}, ${proof}`)).toBe('more than one DPoP header')
    expect(refusal(`${proof}=`)).toBe('not a compact JWS')
    expect(refusal(`${proof}.extra`)).toBe('not a compact JWS')
    expect(refusal(`a${'A'.repeat(9000)}`)).toBe('proof too large')
  })

  it('refuses a payload that is not a JSON object', () => {
    const key = keys.ES256
    const header = b64({ typ: 'dpop+jwt', alg: 'ES256', jwk: key.jwk })
    for (const payload of [b64('[1,2]'), b64('not json')]) {
      const input = `${header}.${payload}`
      const signature = jwsSignature('ES256', key.privateKey, input)
      expect(refusal(`${input}.${b64url(signature)}`)).toMatch(
        /^payload is not (JSON|a JSON object)$/,
      )
    }
  })
})

describe('the proof claims', () => {
  beforeAll(fresh)
  const proofWith = (overrides: Record<string, unknown>) => signProof(keys.ES256, claims(overrides))

  it('refuses a missing, empty or oversized jti', () => {
    for (const jti of [undefined, '', 42, 'j'.repeat(257)]) {
      expect(refusal(proofWith({ jti }))).toBe('jti missing or malformed')
    }
  })

  it('refuses an htm other than the request method, compared exactly', () => {
    expect(refusal(proofWith({ htm: 'GET' }))).toBe('htm does not match the request')
    expect(refusal(proofWith({ htm: 'post' }))).toBe('htm does not match the request')
    expect(refusal(proofWith({ htm: undefined }))).toBe('htm does not match the request')
  })

  it('refuses an htu for another URI: path, host, scheme, port, or with userinfo', () => {
    const others = [
      'https://auth.example.test/login',
      'https://auth.example.test/token/',
      'https://evil.example.test/token',
      'http://auth.example.test/token',
      'https://auth.example.test:8443/token',
      'https://user@auth.example.test/token',
      '/token',
      'not a uri',
    ]
    for (const htu of others) {
      expect(refusal(proofWith({ htu }))).toBe('htu does not match the request')
    }
    expect(refusal(proofWith({ htu: undefined }))).toBe('htu missing')
    expect(refusal(proofWith({ htu: `${URI}/${'a'.repeat(2048)}` }))).toBe('htu missing')
  })

  it('accepts an iat up to 60 s old plus 30 s of skew, and 30 s in the future, and nothing beyond', () => {
    const seconds = Math.floor(clock.now() / 1000)
    clock = new FakeClock(seconds * 1000)
    verifier = new DpopVerifier(clock)
    for (const iat of [seconds - 90, seconds, seconds + 30]) {
      expect(verifier.verify(proofWith({ iat }), REQUEST).iat).toBe(iat)
    }
    expect(refusal(proofWith({ iat: seconds - 91 }))).toBe('iat is too old')
    expect(refusal(proofWith({ iat: seconds + 31 }))).toBe('iat is in the future')
    for (const iat of [undefined, '1700000000', Number.NaN]) {
      expect(refusal(proofWith({ iat }))).toBe('iat missing')
    }
  })

  it('takes the window and skew from its settings', () => {
    const seconds = Math.floor(clock.now() / 1000)
    const strict = new DpopVerifier(clock, { maxAgeSeconds: 10, skewSeconds: 2 })
    const proof = proofWith({ iat: seconds - 12 })
    expect(strict.verify(proof, REQUEST).acceptedUntil).toBe(clock.now())
    expect(() => strict.verify(proofWith({ iat: seconds - 13 }), REQUEST)).toThrow('iat is too old')
    expect(() => strict.verify(proofWith({ iat: seconds + 3 }), REQUEST)).toThrow(
      'iat is in the future',
    )
  })

  it('requires ath to be the hash of the presented access token', () => {
    const token = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl'
    const request = { ...REQUEST, accessToken: token }
    expect(verifier.verify(proofWith({ ath: accessTokenHash(token) }), request).jti).toBeTruthy()
    expect(refusal(proofWith({}), request)).toBe('ath does not match the access token')
    expect(refusal(proofWith({ ath: accessTokenHash(`${token}x`) }), request)).toBe(
      'ath does not match the access token',
    )
  })

  it('computes ath as RFC 9449 §7.1 shows', () => {
    expect(accessTokenHash('Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU')).toBe(
      'fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo',
    )
  })
})

describe('nonces (RFC 9449 §8)', () => {
  const key = randomBytes(32)
  let nonces: DpopNonces
  beforeAll(() => {
    fresh()
    nonces = new DpopNonces(key, clock, { slotSeconds: 300 })
  })
  const proofWith = (overrides: Record<string, unknown>) => signProof(keys.ES256, claims(overrides))
  const challenge = (proof: string): UseDpopNonce => {
    try {
      verifier.verify(proof, { ...REQUEST, nonces })
    } catch (error) {
      expect(error).toBeInstanceOf(UseDpopNonce)
      return error as UseDpopNonce
    }
    throw new Error('no nonce challenge')
  }

  it('answers use_dpop_nonce with a current nonce in DPoP-Nonce when the proof has none', () => {
    const error = challenge(proofWith({}))
    expect(error.status).toBe(400)
    expect(error.error).toBe('use_dpop_nonce')
    expect(error.headers['DPoP-Nonce']).toBe(nonces.issue())
    expect(nonces.check(error.headers['DPoP-Nonce'] as string)).toBe(true)
  })

  it('accepts a proof with the nonce it was given, and refuses an unknown one', () => {
    const nonce = nonces.issue()
    expect(verifier.verify(proofWith({ nonce }), { ...REQUEST, nonces }).nonce).toBe(nonce)
    expect(challenge(proofWith({ nonce: 'made-up' })).code).toBe('dpop_nonce_stale')
    const otherServer = new DpopNonces(randomBytes(32), clock)
    expect(challenge(proofWith({ nonce: otherServer.issue() })).code).toBe('dpop_nonce_stale')
  })

  it('checks every other rule first: a proof that would fail anyway is not sent round for a nonce', () => {
    const badSignature = signProof(keys.ES256, claims(), { signWith: proofKey('ES256').privateKey })
    expect(() => verifier.verify(badSignature, { ...REQUEST, nonces })).toThrow(InvalidDpopProof)
    expect(() => verifier.verify(proofWith({ htm: 'GET' }), { ...REQUEST, nonces })).toThrow(
      InvalidDpopProof,
    )
  })

  it('refuses a nonce that is not a string', () => {
    expect(refusal(proofWith({ nonce: 42 }), { ...REQUEST, nonces })).toBe('nonce malformed')
  })

  it('keeps a nonce valid through the next slot, and no longer', () => {
    const local = new FakeClock(Math.floor(Date.UTC(2026, 0, 1) / 300_000) * 300_000)
    const slotted = new DpopNonces(key, local, { slotSeconds: 300 })
    const nonce = slotted.issue()
    local.advance(299)
    expect(slotted.check(nonce)).toBe(true)
    expect(slotted.issue()).toBe(nonce)
    local.advance(1)
    expect(slotted.issue()).not.toBe(nonce)
    expect(slotted.check(nonce)).toBe(true)
    local.advance(299)
    expect(slotted.check(nonce)).toBe(true)
    local.advance(1)
    expect(slotted.check(nonce)).toBe(false)
  })

  it('gives the same nonce on every instance with the same key, and checks it on each (stateless)', () => {
    const a = new DpopNonces(key, clock)
    const b = new DpopNonces(Buffer.from(key), clock)
    expect(a.issue()).toBe(b.issue())
    expect(b.check(a.issue())).toBe(true)
    expect(new DpopNonces(randomBytes(32), clock).check(a.issue())).toBe(false)
  })

  it('refuses garbage and another encoding of a good nonce', () => {
    const nonce = nonces.issue()
    for (const bad of ['', 'x', `${nonce}A`, `${nonce}=`, nonce.slice(0, -1), '!'.repeat(22)]) {
      expect(nonces.check(bad)).toBe(false)
    }
  })

  it('refuses a key shorter than 32 bytes at construction', () => {
    expect(() => new DpopNonces(randomBytes(16), clock)).toThrow('at least 32 bytes')
  })
})

describe('helpers', () => {
  it('normalizes htu as RFC 3986 §6.2.2 and §6.2.3 say', () => {
    expect(normalizeHtu('HTTPS://Example.COM:443')).toBe('https://example.com/')
    expect(normalizeHtu('http://example.com:80/a/./b/../c?q#f')).toBe('http://example.com/a/c')
    expect(normalizeHtu('https://example.com/%7euser/%2f%c3%a9')).toBe(
      'https://example.com/~user/%2F%C3%A9',
    )
    expect(normalizeHtu('https://example.com:8443/x')).toBe('https://example.com:8443/x')
    expect(normalizeHtu('ftp://example.com/x')).toBeUndefined()
    expect(normalizeHtu('https://a:b@example.com/x')).toBeUndefined()
  })

  it('computes the RFC 7638 thumbprint of each kind of key as jose does', async () => {
    for (const alg of ['ES256', 'RS256', 'EdDSA'] as const) {
      const jwk = proofKey(alg).jwk as never
      expect(jwkThumbprint(jwk)).toBe(await calculateJwkThumbprint(jwk))
    }
  })

  it('proofs it accepts are accepted by jose too (EmbeddedJWK)', async () => {
    fresh()
    const proof = signProof(keys.ES256, proofClaims(Date.now(), URI))
    const { protectedHeader } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt' })
    expect(protectedHeader.alg).toBe('ES256')
  })
})
