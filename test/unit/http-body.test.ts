import type { Request } from '@middy/core'
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda'
import { describe, expect, it } from 'vitest'
import { parseBody } from '../../functions/adapters/http.js'
import { UnsupportedMediaType } from '../../functions/core/errors.js'

/** An event as API Gateway or a proxy might send it: header names in any case. */
const event = (headers: Record<string, string>, body: string): APIGatewayProxyEventV2 =>
  ({
    version: '2.0',
    routeKey: 'POST /token',
    rawPath: '/token',
    rawQueryString: '',
    headers,
    body,
    isBase64Encoded: false,
    requestContext: { http: { method: 'POST' } },
  }) as unknown as APIGatewayProxyEventV2

/** Runs the body parser on its own: no header normaliser (or anything else) before it. */
async function parseAlone(headers: Record<string, string>, body: string) {
  const parsed = new WeakMap<object, Record<string, string>>()
  const request = {
    event: event(headers, body),
    context: {} as Context,
    response: undefined,
    error: undefined,
    internal: {},
  } as unknown as Request<APIGatewayProxyEventV2>
  await parseBody(parsed).before?.(request)
  return { ...parsed.get(request.event) }
}

describe('body parsing, on its own', () => {
  it('finds the content type whatever the header name’s case, with no normaliser before it', async () => {
    for (const name of ['content-type', 'Content-Type', 'CONTENT-TYPE', 'cOnTeNt-TyPe']) {
      expect(await parseAlone({ [name]: 'application/json' }, '{"a":"b"}'), name).toEqual({
        a: 'b',
      })
      expect(
        await parseAlone(
          { [name]: 'application/x-www-form-urlencoded; charset=UTF-8' },
          'grant_type=refresh_token',
        ),
        name,
      ).toEqual({ grant_type: 'refresh_token' })
    }
  })

  it('still refuses a body of another type, or none', async () => {
    await expect(parseAlone({ 'Content-Type': 'text/plain' }, 'a=b')).rejects.toBeInstanceOf(
      UnsupportedMediaType,
    )
    await expect(parseAlone({}, 'a=b')).rejects.toBeInstanceOf(UnsupportedMediaType)
  })
})
