/**
 * The deployed entry points, wired from the environment as in Lambda: the
 * authorizer's `handler` and `restHandler`, and `GET /me` reading either our
 * Lambda authorizer's context or the native JWT authorizer's claims.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda'
import { beforeAll, describe, expect, it } from 'vitest'
import { LocalSigner } from '../../functions/adapters/local-signer.js'
import { NATIVE } from '../support/harness.js'
import { mint, standardClaims } from '../support/tokens.js'

const ISSUER = 'https://auth.example.test'
const keyDir = join(mkdtempSync(join(tmpdir(), 'authorizer-handler-')), 'keys')
Object.assign(process.env, {
  TABLE_NAME: 'not-read-without-strict-mode',
  ISSUER,
  CLIENTS: JSON.stringify([NATIVE]),
  SIGNER: 'local',
  LOCAL_KEY_DIR: keyDir,
})

const authorizerModule = await import('../../functions/authorizer/handler.js')
const meModule = await import('../../functions/me/handler.js')

let token: string
beforeAll(async () => {
  const signer = await LocalSigner.open(keyDir)
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
    expect(reply.headers?.['WWW-Authenticate']).toBe('Bearer error="invalid_token"')
    expect(JSON.parse(reply.body as string)).toEqual({
      error: 'invalid_token',
      error_description: expect.any(String),
    })
  })
})
