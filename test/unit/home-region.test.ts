/**
 * The forwarding adapter (functions/adapters/home-region.ts) at the protocol level: the
 * Lambda Invoke API answered by a local server, as the SDK sends and reads it.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { lambdaHomeRegion } from '../../functions/adapters/home-region.js'
import { TemporarilyUnavailable } from '../../functions/core/errors.js'
import { freePort } from '../../local/dynamodb-local.js'
import { listen } from '../../local/server.js'

type Reply = (
  req: IncomingMessage,
  body: string,
) => {
  status?: number
  headers?: Record<string, string>
  body?: string
  hang?: boolean
}

let server: Server
let port: number
let reply: Reply
const seen: { url: string; body: string }[] = []

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      seen.push({ url: req.url ?? '', body })
      const answer = reply(req, body)
      if (answer.hang) return
      res.writeHead(answer.status ?? 200, answer.headers ?? {})
      res.end(answer.body ?? '')
    })
  })
  port = await freePort()
  await listen(server, port)
})

afterAll(() => {
  server.closeAllConnections()
  server.close()
})

const adapter = (timeoutMs = 2000, to = () => `http://127.0.0.1:${port}`) =>
  lambdaHomeRegion('us-east-1', { functionName: 'TokenService-token', timeoutMs }, { endpoint: to })

describe('forwarding to the home region by Lambda Invoke', () => {
  it('invokes the home’s function with the event as it came plus forwardedFrom, and returns its result as is', async () => {
    const result = {
      statusCode: 200,
      headers: { 'Cache-Control': 'no-store' },
      cookies: ['a=b'],
      body: '{"x":1}',
    }
    reply = () => ({ body: JSON.stringify(result) })
    const event = { rawPath: '/token', body: 'grant_type=refresh_token' }
    expect(await adapter().forward('eu-west-1', event)).toEqual(result)
    const call = seen.at(-1)
    expect(call?.url).toBe('/2015-03-31/functions/TokenService-token/invocations')
    expect(JSON.parse(call?.body ?? '')).toEqual({ ...event, forwardedFrom: 'us-east-1' })
  })

  it('is unreachable when nothing answers: connection refused, or no answer within the budget', async () => {
    const closed = await freePort()
    expect(await adapter(2000, () => `http://127.0.0.1:${closed}`).forward('eu-west-1', {})).toBe(
      'unreachable',
    )
    reply = () => ({ hang: true })
    expect(await adapter(300).forward('eu-west-1', {})).toBe('unreachable')
  })

  it('is unreachable when the home has no such function (not deployed there)', async () => {
    reply = () => ({
      status: 404,
      headers: { 'x-amzn-errortype': 'ResourceNotFoundException' },
      body: '{"message":"Function not found"}',
    })
    expect(await adapter().forward('eu-west-1', {})).toBe('unreachable')
  })

  it('is a fault (503), not a lost home, when the home throttles the invocation: its users are not sent to log in', async () => {
    reply = () => ({
      status: 429,
      headers: { 'x-amzn-errortype': 'TooManyRequestsException' },
      body: '{"message":"Rate exceeded","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}',
    })
    await expect(adapter().forward('eu-west-1', {})).rejects.toBeInstanceOf(TemporarilyUnavailable)
  })

  it('is a fault (503), not a lost home, when the home’s Lambda service refuses the call (a permission): a misconfiguration sends nobody to log in', async () => {
    reply = () => ({
      status: 403,
      headers: { 'x-amzn-errortype': 'AccessDeniedException' },
      body: '{"Message":"User is not authorized to perform: lambda:InvokeFunction"}',
    })
    await expect(adapter().forward('eu-west-1', {})).rejects.toBeInstanceOf(TemporarilyUnavailable)
  })

  it('is a fault (503) when the home’s function failed: a retry may find it well', async () => {
    reply = () => ({
      headers: { 'x-amz-function-error': 'Unhandled' },
      body: '{"errorType":"Error","errorMessage":"boom"}',
    })
    await expect(adapter().forward('eu-west-1', {})).rejects.toBeInstanceOf(TemporarilyUnavailable)
    reply = () => ({ body: '{"no":"status"}' })
    await expect(adapter().forward('eu-west-1', {})).rejects.toBeInstanceOf(TemporarilyUnavailable)
  })
})
