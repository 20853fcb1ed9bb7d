/**
 * The deployed entry points, wired from the environment as in Lambda: the
 * authorizer's `handler` and `restHandler`, and `GET /me` reading either our
 * Lambda authorizer's context or the native JWT authorizer's claims.
 */
import { mkdtempSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LocalSigner } from '../../local/signer.js'
import { NATIVE } from '../support/harness.js'
import { mint, standardClaims } from '../support/tokens.js'

const ISSUER = 'https://auth.example.test'
const keyDir = join(mkdtempSync(join(tmpdir(), 'authorizer-handler-')), 'keys')
const signer = await LocalSigner.open(keyDir)

// The token service's JWKS, where the deployed authorizer fetches its keys.
const jwks = createServer(async (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ keys: await signer.publicKeys() }))
})
await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve))
afterAll(() => new Promise<void>((resolve) => jwks.close(() => resolve())))

// Exactly what the stack gives each function (lib/token-service.ts).
Object.assign(process.env, {
  ISSUER,
  CLIENTS: JSON.stringify([NATIVE]),
  JWKS_URI: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`,
  AUTHORIZER_AUDIENCES: NATIVE.audience,
})

const authorizerModule = await import('../../functions/authorizer/handler.js')
const meModule = await import('../../functions/me/handler.js')

let token: string
beforeAll(async () => {
  token = (await mint(signer, standardClaims(ISSUER, NATIVE.audience, Date.now()))).token
})

const context = {} as Context
const meEvent = (authorizer?: unknown) =>
  ({
    version: '2.0',
    routeKey: 'GET /me',
    rawPath: '/me',
    rawQueryString: '',
    headers: {},
    requestContext: {
      http: {
        method: 'GET',
        path: '/me',
        protocol: 'HTTP/1.1',
        sourceIp: '1.2.3.4',
        userAgent: '',
      },
      ...(authorizer === undefined ? {} : { authorizer }),
    },
    isBase64Encoded: false,
  }) as unknown as APIGatewayProxyEventV2

describe('the deployed authorizer entry points', () => {
  it('handler: an HTTP API simple response with the claims as context', async () => {
    const result = await authorizerModule.handler({
      version: '2.0',
      type: 'REQUEST',
      identitySource: [`Bearer ${token}`],
      headers: { authorization: `Bearer ${token}` },
    } as never)
    expect(result).toMatchObject({
      isAuthorized: true,
      context: { sub: expect.any(String), sid: expect.any(String), roles: ['reader'] },
    })
    const denied = await authorizerModule.handler({
      version: '2.0',
      type: 'REQUEST',
      identitySource: ['Bearer x.y.z'],
      headers: { authorization: 'Bearer x.y.z' },
    } as never)
    expect(denied).toEqual({ isAuthorized: false })
  })

  it('restHandler: an IAM policy for a REQUEST authorizer event', async () => {
    const result = await authorizerModule.restHandler({
      type: 'REQUEST',
      methodArn: 'arn:aws:execute-api:eu-west-1:123456789012:abc/prod/GET/me',
      headers: { Authorization: `Bearer ${token}` },
    } as never)
    expect(result.policyDocument.Statement[0]).toMatchObject({ Effect: 'Allow' })
  })
})

describe('GET /me behind either authorizer', () => {
  it("reads our Lambda authorizer's context", async () => {
    const claims = standardClaims(ISSUER, NATIVE.audience, Date.now())
    const reply = await meModule.handler(meEvent({ lambda: claims }), context)
    expect(reply.statusCode).toBe(200)
    expect(JSON.parse(reply.body as string)).toEqual(claims)
  })

  it("reads the native JWT authorizer's claims, where every value is a string", async () => {
    const claims = standardClaims(ISSUER, NATIVE.audience, Date.now())
    const asStrings = Object.fromEntries(
      Object.entries(claims).map(([name, value]) => [
        name,
        Array.isArray(value) ? `[${value.join(' ')}]` : String(value),
      ]),
    )
    const reply = await meModule.handler(
      meEvent({ jwt: { claims: { ...asStrings, roles: '[reader writer]' }, scopes: null } }),
      context,
    )
    expect(reply.statusCode).toBe(200)
    expect(JSON.parse(reply.body as string)).toEqual({ ...claims, roles: ['reader', 'writer'] })
  })

  it('answers 401 invalid_token when no authorizer ran (a route left unprotected)', async () => {
    const reply = await meModule.handler(meEvent(), context)
    expect(reply.statusCode).toBe(401)
    expect(reply.headers?.['WWW-Authenticate']).toBe(
      'Bearer error="invalid_token", DPoP error="invalid_token", algs="ES256 RS256 EdDSA Ed25519"',
    )
    expect(JSON.parse(reply.body as string)).toEqual({
      error: 'invalid_token',
      error_description: expect.any(String),
    })
  })
})
