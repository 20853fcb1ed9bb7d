/**
 * The deployed authorizer meeting a cold JWKS: the jwks function behind the API may take
 * longer to answer its first request (its own cold start and key reads) than an AWS call's
 * per-attempt timeout. The authorizer's fetch has its own, longer budget
 * (`JWKS_FETCH_TIMEOUT_MS`), inside the authorizer's own timeout, so a bearer request at
 * a cold start is answered, not failed with a 500.
 */
import { mkdtempSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { SETTINGS } from '../../functions/settings.js'
import { LocalSigner } from '../../local/signer.js'
import { NATIVE } from '../support/harness.js'
import { mint, standardClaims } from '../support/tokens.js'

const ISSUER = 'https://auth.example.test'
const signer = await LocalSigner.open(join(mkdtempSync(join(tmpdir(), 'cold-jwks-')), 'keys'))
// Slower than an AWS call may take, as a cold jwks function can be.
const JWKS_DELAY_MS = SETTINGS.AWS_CALL_TIMEOUT_MS.default + 300

const jwks = createServer(async (_req, res) => {
  const body = JSON.stringify({ keys: await signer.publicKeys() })
  setTimeout(() => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(body)
  }, JWKS_DELAY_MS)
})
await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve))
afterAll(() => new Promise<void>((resolve) => jwks.close(() => resolve())))

Object.assign(process.env, {
  ISSUER,
  JWKS_URI: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`,
  AUTHORIZER_AUDIENCES: NATIVE.audience,
})
const { handler } = await import('../../functions/authorizer/handler.js')

it('verifies a token when the JWKS answers slower than an AWS call’s timeout (a cold jwks function)', async () => {
  expect(SETTINGS.JWKS_FETCH_TIMEOUT_MS.default).toBeGreaterThan(JWKS_DELAY_MS)
  const { token } = await mint(signer, standardClaims(ISSUER, NATIVE.audience, Date.now()))
  const result = await handler({
    version: '2.0',
    type: 'REQUEST',
    identitySource: [`Bearer ${token}`],
    headers: { authorization: `Bearer ${token}` },
  } as never)
  expect(result).toMatchObject({ isAuthorized: true })
})
