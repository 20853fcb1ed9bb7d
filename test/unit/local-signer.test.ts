import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { JwtVerifier } from 'aws-jwt-verify'
import { calculateJwkThumbprint, createLocalJWKSet, type JWK, jwtVerify } from 'jose'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { LocalSigner } from '../../local/signer.js'
import { issueToken, publishedJwks } from '../support/tokens.js'

const ISSUER = 'http://localhost:3000'
const AUDIENCE = 'local-api'
const CLAIMS = { iss: ISSUER, aud: AUDIENCE }

let root: string
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'local-signer-'))
})
afterEach(async () => {
  await rm(root, { recursive: true, force: true })
})

describe('LocalSigner', () => {
  it('generates a PKCS#8 RSA-2048 key on first open, in a new private directory', async () => {
    const dir = join(root, 'keys')
    const signer = await LocalSigner.open(dir)
    expect(signer.alg).toBe('RS256')

    const pem = await readFile(join(dir, 'signing-key.pem'), 'utf8')
    // PKCS#8 PEM (the label is built here so that no key-looking text sits in the repo).
    expect(pem.split('\n')[0]).toBe(`-----BEGIN ${'PRIVATE'} KEY-----`)
    const key = createPrivateKey(pem)
    expect(key.asymmetricKeyType).toBe('rsa')
    expect(key.asymmetricKeyDetails?.modulusLength).toBe(2048)

    expect((await stat(join(dir, 'signing-key.pem'))).mode & 0o777).toBe(0o600)
    expect((await stat(dir)).mode & 0o077).toBe(0)
    expect(await readdir(dir)).toEqual(['signing-key.pem']) // no temp file left behind
  })

  it('reuses the stored key: a second open of the same dir has the same kid', async () => {
    const first = await LocalSigner.open(root)
    const pem = await readFile(join(root, 'signing-key.pem'), 'utf8')
    const second = await LocalSigner.open(root)
    expect(await second.keyId()).toBe(await first.keyId())
    expect(await readFile(join(root, 'signing-key.pem'), 'utf8')).toBe(pem)
  })

  it('ends with one key on disk that every racing first open uses', async () => {
    const signers = await Promise.all(Array.from({ length: 2 }, () => LocalSigner.open(root)))
    const kids = await Promise.all(signers.map((signer) => signer.keyId()))
    expect(new Set(kids).size).toBe(1)
    const onDisk = createPublicKey(await readFile(join(root, 'signing-key.pem'), 'utf8'))
    expect(kids[0]).toBe(await calculateJwkThumbprint(onDisk.export({ format: 'jwk' }) as JWK))
    expect(await readdir(root)).toEqual(['signing-key.pem'])
  })

  it('loads an existing PKCS#8 key instead of generating one', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    await writeFile(
      join(root, 'signing-key.pem'),
      privateKey.export({ type: 'pkcs8', format: 'pem' }),
      {
        mode: 0o600,
      },
    )
    const signer = await LocalSigner.open(root)
    expect(await signer.keyId()).toBe(
      await calculateJwkThumbprint(publicKey.export({ format: 'jwk' }) as JWK),
    )
  })

  it('refuses a key file that is not an RSA key of at least 2048 bits', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    await writeFile(
      join(root, 'signing-key.pem'),
      privateKey.export({ type: 'pkcs8', format: 'pem' }),
    )
    await expect(LocalSigner.open(root)).rejects.toThrow(
      /signing-key.pem is an EC prime256v1 key, but RS256 needs an RSA key/,
    )
  })

  it('uses the RFC 7638 thumbprint of its public key as kid', async () => {
    const signer = await LocalSigner.open(root)
    const publicKey = createPublicKey(await readFile(join(root, 'signing-key.pem'), 'utf8'))
    expect(await signer.keyId()).toBe(
      await calculateJwkThumbprint(publicKey.export({ format: 'jwk' }) as JWK),
    )
  })

  it('publishes exactly one RS256 signing JWK, without any private member', async () => {
    const signer = await LocalSigner.open(root)
    const keys = await signer.publicKeys()
    expect(keys).toHaveLength(1)
    const [jwk] = keys
    expect(jwk).toMatchObject({ kty: 'RSA', kid: await signer.keyId(), alg: 'RS256', use: 'sig' })
    expect(Object.keys(jwk ?? {}).sort()).toEqual(['alg', 'e', 'kid', 'kty', 'n', 'use'])
    for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(jwk).not.toHaveProperty(member)
  })

  it('issues access tokens that jose verifies against its published JWKS', async () => {
    const signer = await LocalSigner.open(root)
    const token = await issueToken(signer, CLAIMS)
    const { payload, protectedHeader } = await jwtVerify(
      token,
      createLocalJWKSet(await publishedJwks(signer)),
      { issuer: ISSUER, audience: AUDIENCE, typ: 'at+jwt', algorithms: ['RS256'] },
    )
    expect(protectedHeader).toEqual({ alg: 'RS256', typ: 'at+jwt', kid: await signer.keyId() })
    expect(payload.sub).toBe('user-123')
  })

  it('issues access tokens that aws-jwt-verify verifies against its published JWKS', async () => {
    const signer = await LocalSigner.open(root)
    const verifier = JwtVerifier.create({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: `${ISSUER}/.well-known/jwks.json`,
    })
    verifier.cacheJwks(await publishedJwks(signer))
    await expect(verifier.verify(await issueToken(signer, CLAIMS))).resolves.toMatchObject({
      sub: 'user-123',
    })
  })

  it('issues tokens that still verify after a restart (a new open of the same dir)', async () => {
    const token = await issueToken(await LocalSigner.open(root), CLAIMS)
    const restarted = await LocalSigner.open(root)
    await expect(
      jwtVerify(token, createLocalJWKSet(await publishedJwks(restarted)), {
        issuer: ISSUER,
        audience: AUDIENCE,
      }),
    ).resolves.toBeDefined()
  })
})
