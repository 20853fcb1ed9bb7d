/**
 * The password policy (core/password-policy.ts) with its real parts: the
 * offline list (functions/adapters/common-passwords.ts) and the range API
 * client (functions/adapters/breach-range.ts) against a stand-in server on
 * 127.0.0.1.
 */
import { createHash } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { breachRange } from '../../functions/adapters/breach-range.js'
import {
  COMMON_PASSWORDS_SIZE,
  commonPasswords,
} from '../../functions/adapters/common-passwords.js'
import { passwordPolicy } from '../../functions/adapters/password-policy.js'
import { ConfigError, loadBreachCheck } from '../../functions/config.js'
import { InvalidRequest } from '../../functions/core/errors.js'
import { assertNewPassword, assertNotBreached } from '../../functions/core/password-policy.js'
import type { TelemetryEvent } from '../../functions/core/ports.js'

const rule = (description: string) => new InvalidRequest(description)

describe('the offline list of common passwords', () => {
  it('holds the 49,233 passwords of @zxcvbn-ts/language-common, compared letter case aside', () => {
    expect(COMMON_PASSWORDS_SIZE).toBe(49_233)
    for (const common of ['password', 'Password1', 'QWERTYUIOP', 'trustno1', 'iloveyou']) {
      expect(commonPasswords.has(common), common).toBe(true)
    }
    for (const rare of ['correct horse battery staple', 'x7#Lq!v9w2Zr', 'demo-password']) {
      expect(commonPasswords.has(rare), rare).toBe(false)
    }
  })
})

describe('the rules that cost nothing (assertNewPassword)', () => {
  const policy = { common: commonPasswords }

  it('refuses by rule, naming the parameter and never the password', () => {
    const refusal = (password: string, current?: string) => {
      try {
        assertNewPassword(policy, password, {
          name: 'new_password',
          ...(current === undefined ? {} : { current }),
        })
      } catch (error) {
        expect((error as Error).message).not.toContain(password)
        return error
      }
      return undefined
    }
    expect(refusal('short')).toEqual(rule('new_password must be 8 to 1024 bytes'))
    expect(refusal('sunshine')).toEqual(rule('new_password is on a list of common passwords'))
    expect(refusal('a long and fine passphrase', 'a long and fine passphrase')).toEqual(
      rule('new_password must differ from the current password'),
    )
    expect(refusal('a long and fine passphrase', 'another one')).toBeUndefined()
  })

  it('takes two spellings of one password (NFC and NFD) as the same, as scrypt hashes them', () => {
    const composed = 'café crème brûlée'.normalize('NFC')
    const decomposed = composed.normalize('NFD')
    expect(decomposed).not.toBe(composed)
    expect(() => assertNewPassword(policy, decomposed, { current: composed })).toThrow(
      rule('password must differ from the current password'),
    )
  })
})

describe('the breached-password range API (HIBP-compatible, k-anonymity)', () => {
  const breached = 'a passphrase from some old breach'
  const padded = 'a passphrase the padding lists'
  const sha1 = (password: string) => createHash('sha1').update(password).digest('hex').toUpperCase()
  const requests: { url: string; headers: IncomingHttpHeaders }[] = []
  let mode: 'answer' | 'fail' | 'hang' | 'huge' = 'answer'
  let server: Server
  let url: string

  beforeAll(async () => {
    server = createServer((req, res) => {
      requests.push({ url: req.url ?? '', headers: req.headers })
      if (mode === 'hang') return
      if (mode === 'fail') {
        res.writeHead(503).end()
        return
      }
      if (mode === 'huge') {
        res.writeHead(200).end(`${'0'.repeat(35)}:1\r\n`.repeat(60_000))
        return
      }
      const prefix = req.url?.slice('/range/'.length) ?? ''
      const lines = [breached, padded]
        .filter((password) => sha1(password).startsWith(prefix))
        .map((password) => `${sha1(password).slice(5)}:${password === breached ? 7 : 0}`)
      res.writeHead(200).end(['0123456789ABCDEF0123456789ABCDEF012:2', ...lines].join('\r\n'))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })

  it('sends the first 5 hex characters of the SHA-1 only, asks for padding, and reads the count', async () => {
    const range = breachRange({ url: `${url}/`, timeoutMs: 2000 })
    requests.length = 0
    expect(await range.check(breached)).toBe('breached')
    expect(await range.check(padded)).toBe('not_found')
    expect(await range.check('a passphrase nobody ever leaked')).toBe('not_found')
    expect(requests.map((request) => request.url)).toEqual([
      `/range/${sha1(breached).slice(0, 5)}`,
      `/range/${sha1(padded).slice(0, 5)}`,
      `/range/${sha1('a passphrase nobody ever leaked').slice(0, 5)}`,
    ])
    expect(requests[0]?.headers['add-padding']).toBe('true')
    expect(JSON.stringify(requests)).not.toContain(sha1(breached).slice(5))
  })

  it('is unavailable, never breached, when the service fails, hangs, answers too much or is not there', async () => {
    for (const failing of ['fail', 'hang', 'huge'] as const) {
      mode = failing
      const range = breachRange({ url, timeoutMs: 300 })
      expect(await range.check(breached), failing).toBe('unavailable')
    }
    mode = 'answer'
    const gone = createServer()
    await new Promise<void>((resolve) => gone.listen(0, '127.0.0.1', resolve))
    const port = (gone.address() as AddressInfo).port
    await new Promise((resolve) => gone.close(resolve))
    expect(
      await breachRange({ url: `http://127.0.0.1:${port}`, timeoutMs: 300 }).check(breached),
    ).toBe('unavailable')
  })

  it('in the policy: a breached password is refused by rule; an unreachable service accepts it, counted', async () => {
    const emitted: TelemetryEvent[] = []
    const policy = passwordPolicy({
      telemetry: { emit: (event) => emitted.push(event) },
      breachCheck: { url, timeoutMs: 300 },
    })
    await expect(assertNotBreached(policy, breached, 'new_password')).rejects.toEqual(
      rule('new_password appears in a known data breach'),
    )
    expect(emitted).toEqual([])
    mode = 'fail'
    await expect(assertNotBreached(policy, breached)).resolves.toBeUndefined()
    mode = 'answer'
    expect(emitted).toEqual(['breach_check_unavailable'])
    // Off (the default): no call at all.
    requests.length = 0
    const off = passwordPolicy({ telemetry: { emit: (event) => emitted.push(event) } })
    await expect(assertNotBreached(off, breached)).resolves.toBeUndefined()
    expect(requests).toEqual([])
  })

  it('is configured by PASSWORD_BREACH_CHECK_*: off unless a URL is set, https only (http on loopback)', () => {
    expect(loadBreachCheck({})).toBeUndefined()
    expect(
      loadBreachCheck({ PASSWORD_BREACH_CHECK_URL: 'https://api.pwnedpasswords.com' }),
    ).toEqual({ url: 'https://api.pwnedpasswords.com', timeoutMs: 1500 })
    expect(() =>
      loadBreachCheck({ PASSWORD_BREACH_CHECK_URL: 'http://range.example.com' }),
    ).toThrow(ConfigError)
    expect(() =>
      loadBreachCheck({
        PASSWORD_BREACH_CHECK_URL: 'https://range.example.com',
        PASSWORD_BREACH_CHECK_TIMEOUT_MS: '50',
      }),
    ).toThrow(/PASSWORD_BREACH_CHECK_TIMEOUT_MS/)
  })
})
