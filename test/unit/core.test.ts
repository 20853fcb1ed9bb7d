import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { parseClients } from '../../functions/core/clients.js'
import { InvalidScope, OAuthError, TemporarilyUnavailable } from '../../functions/core/errors.js'
import {
  dummyHash,
  hashPassword,
  normalizeUsername,
  verifyPassword,
} from '../../functions/core/passwords.js'
import type { Session, User } from '../../functions/core/ports.js'
import {
  hashToken,
  newRefreshToken,
  newSessionId,
  newUserId,
  openChild,
  parseRefreshToken,
  sealChild,
  sealKeyName,
} from '../../functions/core/refresh-token.js'
import { grantScope } from '../../functions/core/service.js'
import { sessionIsLive } from '../../functions/core/sessions.js'

const FAST = { ln: 10, r: 8, p: 1 } // unit tests of the format only; the OWASP cost is tested once below

describe('refresh tokens', () => {
  const locator = { sub: newUserId(), sid: newSessionId() }

  it('carry 256 random bits behind a recognisable prefix and a non-secret locator', () => {
    const token = newRefreshToken(locator)
    expect(token.startsWith(`rt1_${locator.sub}.${locator.sid}.`)).toBe(true)
    const secret = Buffer.from(token.split('.')[2] as string, 'base64url')
    expect(secret.length).toBe(32)
    expect(newRefreshToken(locator)).not.toBe(token)
    expect(parseRefreshToken(token)).toEqual(locator)
  })

  it('parse nothing but their own shape', () => {
    const token = newRefreshToken(locator)
    for (const bad of [
      '',
      'rt1_',
      token.slice(0, -1),
      `${token}x`,
      token.replace('rt1_', 'rt2_'),
      ` ${token}`,
      `${token}\n`,
    ]) {
      expect(parseRefreshToken(bad), bad).toBeUndefined()
    }
  })

  it('are stored as SHA-256, base64url', () => {
    expect(hashToken('abc')).toBe('ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0')
  })
})

describe('the grace child seal (HKDF-SHA256 of the parent and a server key + AES-256-GCM)', () => {
  const sid = newSessionId()
  const locator = { sub: newUserId(), sid }
  const parent = newRefreshToken(locator)
  const child = newRefreshToken(locator)
  const serverKey = { name: 'key1', secret: randomBytes(32) }

  it('opens only with the parent token, the same session and the server key it names', () => {
    const sealed = sealChild(parent, sid, child, serverKey)
    expect(sealed).not.toContain(child.split('.')[2])
    // The child's secret only (its locator is its parent's): 32 bytes, 43 characters.
    expect(sealed.split('.')).toHaveLength(5)
    expect(sealed.split('.')[3]).toHaveLength(43)
    expect(sealKeyName(sealed)).toBe('key1')
    expect(openChild(parent, sid, sealed, serverKey.secret)).toBe(child)
    expect(openChild(`${parent}x`, sid, sealed, serverKey.secret)).toBeUndefined()
    expect(openChild(parent, newSessionId(), sealed, serverKey.secret)).toBeUndefined()
    // The parent alone (a copy of the table and an old token) opens nothing; nor another key.
    expect(openChild(parent, sid, sealed)).toBeUndefined()
    expect(openChild(parent, sid, sealed, randomBytes(32))).toBeUndefined()
  })

  it('seals an adopted child, homed in the adopter, as v4: the home bound to the seal, the parent still needed', () => {
    const homed = newRefreshToken({ ...locator, home: 'eu-west-1' })
    const adopted = newRefreshToken({ ...locator, home: 'us-east-1' })
    const sealed = sealChild(homed, sid, adopted, serverKey)
    expect(sealed.split('.').slice(0, 3)).toEqual(['v4', 'key1', 'us-east-1'])
    expect(sealKeyName(sealed)).toBe('key1')
    expect(openChild(homed, sid, sealed, serverKey.secret)).toBe(adopted)
    // An rt1_ parent (the primary's session) works the same.
    expect(
      openChild(parent, sid, sealChild(parent, sid, adopted, serverKey), serverKey.secret),
    ).toBe(adopted)
    // Another home written into the seal does not open.
    expect(
      openChild(homed, sid, sealed.replace('us-east-1', 'ap-south-1'), serverKey.secret),
    ).toBeUndefined()
    expect(openChild(homed, sid, sealed)).toBeUndefined()
    // Another session's child is refused at sealing.
    expect(() =>
      sealChild(
        homed,
        sid,
        newRefreshToken({ sub: locator.sub, sid: newSessionId(), home: 'us-east-1' }),
        serverKey,
      ),
    ).toThrow(/parent’s locator/)
  })

  it('still opens a v1 seal (the parent alone), written before server keys, so an upgrade breaks no replay', () => {
    const key = Buffer.from(
      hkdfSync('sha256', parent, sid, 'rotating-token-service grace child v1', 32),
    )
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', key, iv)
    cipher.setAAD(Buffer.from(sid))
    const ciphertext = Buffer.concat([cipher.update(child), cipher.final()])
    const v1 = ['v1', iv, ciphertext, cipher.getAuthTag()].map((p) =>
      typeof p === 'string' ? p : p.toString('base64url'),
    )
    const sealed = v1.join('.')
    expect(sealKeyName(sealed)).toBeUndefined()
    expect(openChild(parent, sid, sealed)).toBe(child)
  })

  it('still opens a v2 seal (the whole child, the wrapped key as its name), written before issue 17', () => {
    const key = Buffer.from(
      hkdfSync(
        'sha256',
        parent,
        serverKey.secret,
        `rotating-token-service grace child v2 ${sid}`,
        32,
      ),
    )
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', key, iv)
    cipher.setAAD(Buffer.from(sid))
    const ciphertext = Buffer.concat([cipher.update(child), cipher.final()])
    const sealed = [
      'v2',
      'a-wrapped-key',
      ...[iv, ciphertext, cipher.getAuthTag()].map((p) => p.toString('base64url')),
    ].join('.')
    expect(sealKeyName(sealed)).toBe('a-wrapped-key')
    expect(openChild(parent, sid, sealed, serverKey.secret)).toBe(child)
    expect(openChild(parent, sid, sealed, randomBytes(32))).toBeUndefined()
  })

  it('seals only a child with its parent’s locator', () => {
    const stranger = newRefreshToken({ sub: newUserId(), sid })
    expect(() => sealChild(parent, sid, stranger, serverKey)).toThrow(/locator/)
  })

  it('refuses a tampered seal', () => {
    const sealed = sealChild(parent, sid, child, serverKey)
    const parts = sealed.split('.')
    const ciphertext = Buffer.from(parts[3] as string, 'base64url')
    ciphertext[0] = (ciphertext[0] as number) ^ 1
    parts[3] = ciphertext.toString('base64url')
    expect(openChild(parent, sid, parts.join('.'), serverKey.secret)).toBeUndefined()
    expect(openChild(parent, sid, 'v2.key1.garbage', serverKey.secret)).toBeUndefined()
    expect(openChild(parent, sid, 'v3.key1.garbage', serverKey.secret)).toBeUndefined()
    expect(openChild(parent, sid, 'v1.garbage')).toBeUndefined()
  })
})

describe('passwords', () => {
  it('hash with scrypt N=2^17, r=8, p=1 by default into a PHC string that verifies', async () => {
    const phc = await hashPassword('a password of some length')
    expect(phc).toMatch(/^\$scrypt\$ln=17,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/)
    expect(await verifyPassword('a password of some length', phc)).toBe(true)
    expect(await verifyPassword('a password of some lengtH', phc)).toBe(false)
  })

  it('keep their parameters in the hash, so they can be raised later', async () => {
    const phc = await hashPassword('pw-12345678', FAST)
    expect(phc.startsWith('$scrypt$ln=10,r=8,p=1$')).toBe(true)
    expect(await verifyPassword('pw-12345678', phc)).toBe(true)
  })

  it('never truncate long passwords', async () => {
    const long = 'x'.repeat(200)
    const phc = await hashPassword(long, FAST)
    expect(await verifyPassword(`${'x'.repeat(199)}y`, phc)).toBe(false)
    expect(await verifyPassword(long, phc)).toBe(true)
  })

  it('give a well-formed dummy hash that no password matches, costing one full hash', async () => {
    const dummy = dummyHash()
    expect(dummy).toMatch(/^\$scrypt\$ln=17,r=8,p=1\$/)
    expect(await verifyPassword('anything', dummy)).toBe(false)
  })

  it('never match a malformed stored hash', async () => {
    for (const phc of [
      '',
      'plain',
      '$scrypt$ln=17,r=8,p=1$$',
      '$scrypt$ln=40,r=8,p=1$AAAA$AAAAAAAAAAAAAAAAAAAAAA',
    ]) {
      expect(await verifyPassword('x', phc)).toBe(false)
    }
  })

  it('compare usernames case-insensitively after normalization', () => {
    expect(normalizeUsername('  Alice ')).toBe('alice')
    expect(normalizeUsername('ＡＬＩＣＥ')).toBe('alice')
  })
})

describe('clients', () => {
  it('fill in the docs/design.md defaults', () => {
    const [client] = parseClients([
      { client_id: 'app', type: 'native', audience: 'https://api' },
    ]).values()
    expect(client).toEqual({
      clientId: 'app',
      type: 'native',
      audience: 'https://api',
      allowedOrigins: [],
      scopes: ['openid'],
      accessTokenTtlSeconds: 900,
      refreshIdleTtlSeconds: 604_800,
      refreshAbsoluteTtlSeconds: 2_592_000,
      reuseGraceSeconds: 10,
      cookieMode: false,
      reuseDetection: 'enforce',
      dpop: 'optional',
      dpopNonce: false,
    })
  })

  it('refuse out-of-range values, wildcard origins and repeated ids, naming the field', () => {
    const base = { client_id: 'app', type: 'spa', audience: 'a' }
    expect(() => parseClients([{ ...base, access_token_ttl_seconds: 30 }])).toThrow(
      /access_token_ttl_seconds/,
    )
    expect(() => parseClients([{ ...base, reuse_grace_seconds: 61 }])).toThrow(
      /reuse_grace_seconds/,
    )
    expect(() => parseClients([{ ...base, allowed_origins: ['*'] }])).toThrow(/allowed_origins/)
    expect(() => parseClients([{ ...base, cookie_mode: true }])).toThrow(/allowed_origins/)
    expect(() => parseClients([{ ...base, reuse_detection: 'log' }])).toThrow(/reuse_detection/)
    expect(() => parseClients([base, base])).toThrow(/repeated/)
    expect(() => parseClients([])).toThrow()
  })

  it('take dpop as optional, required or disabled, and a nonce only with DPoP on', () => {
    const base = { client_id: 'app', type: 'native', audience: 'a' }
    const [required] = parseClients([{ ...base, dpop: 'required', dpop_nonce: true }]).values()
    expect(required).toMatchObject({ dpop: 'required', dpopNonce: true })
    expect(() => parseClients([{ ...base, dpop: 'yes' }])).toThrow(/clients\[0\]\.dpop must be/)
    expect(() => parseClients([{ ...base, dpop_nonce: 'true' }])).toThrow(/dpop_nonce/)
    expect(() => parseClients([{ ...base, dpop: 'disabled', dpop_nonce: true }])).toThrow(
      /dpop_nonce needs DPoP/,
    )
  })
})

describe('scope', () => {
  it('grants everything allowed when none is asked, and exactly what is asked otherwise', () => {
    expect(grantScope(undefined, ['openid', 'api'])).toBe('openid api')
    expect(grantScope('api api', ['openid', 'api'])).toBe('api')
    expect(() => grantScope('admin', ['openid'])).toThrow(InvalidScope)
  })
})

describe('errors', () => {
  it('expose client errors and hide server errors, with Retry-After on 503', () => {
    expect(new InvalidScope().expose).toBe(true)
    const unavailable = new TemporarilyUnavailable('dynamodb down')
    expect(unavailable).toBeInstanceOf(OAuthError)
    expect(unavailable.expose).toBe(false)
    expect(unavailable.status).toBe(503)
    expect(unavailable.headers['Retry-After']).toBe('1')
    expect(unavailable.description).not.toContain('dynamodb')
  })
})

describe('a live session (sessionIsLive: refresh, the sessions API, the strict authorizer)', () => {
  const now = Date.UTC(2026, 10, 22, 12)
  const user: User = {
    sub: newUserId(),
    username: 'alice',
    passwordHash: dummyHash(FAST),
    roles: [],
    status: 'active',
    createdAt: now - 1000,
  }
  const session: Session = {
    sid: newSessionId(),
    sub: user.sub,
    clientId: 'native',
    scope: 'openid',
    status: 'active',
    createdAt: now,
    lastUsedAt: now,
    idleExpiresAt: now + 60_000,
    absoluteExpiresAt: now + 120_000,
    generation: 0,
    currentHash: 'x',
  }

  it('ends at exactly idle_expires_at and at exactly absolute_expires_at', () => {
    expect(sessionIsLive(session, user, session.idleExpiresAt - 1)).toBe(true)
    expect(sessionIsLive(session, user, session.idleExpiresAt)).toBe(false)
    const used = { ...session, idleExpiresAt: session.absoluteExpiresAt + 1 }
    expect(sessionIsLive(used, user, session.absoluteExpiresAt - 1)).toBe(true)
    expect(sessionIsLive(used, user, session.absoluteExpiresAt)).toBe(false)
  })

  it('ends with a cut after its creation, unless it is the session a password change kept', () => {
    const cut = { ...user, sessionsValidAfter: now + 1 }
    expect(sessionIsLive(session, cut, now)).toBe(false)
    expect(sessionIsLive(session, { ...cut, keptSession: session.sid }, now)).toBe(true)
    expect(sessionIsLive(session, { ...user, sessionsValidAfter: now }, now)).toBe(true)
    expect(sessionIsLive(session, { ...user, status: 'disabled' }, now)).toBe(false)
  })
})
