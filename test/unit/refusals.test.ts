import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Logger } from '@aws-lambda-powertools/logger'
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { httpHandler } from '../../functions/adapters/http.js'
import { createObservability } from '../../functions/adapters/observability.js'
import {
  HOME_UNREACHABLE_DESCRIPTION,
  HomeUnreachable,
  INVALID_GRANT_DESCRIPTION,
  InvalidClient,
  InvalidGrant,
  InvalidToken,
  type OAuthError,
  TooManyRequests,
  UseDpopNonce,
} from '../../functions/core/errors.js'
import {
  type ClientRefusal,
  type GrantRefusal,
  type NonceRefusal,
  REFUSAL_CODES,
  REFUSALS,
  type RefusalCode,
  type ThrottleRefusal,
  type TokenRefusal,
} from '../../functions/core/refusals.js'
import { HTTP_FUNCTIONS } from '../../functions/routes.js'

/**
 * Refusal codes (docs/design.md "Refusal codes"): one closed set, each code
 * documented and thrown somewhere, and none of them ever seen by the client.
 */

const ROOT = join(import.meta.dirname, '../..')

/** The error a refusal with this code throws (its class is the code's OAuth error). */
function refusal(code: RefusalCode, check?: string): OAuthError {
  switch (REFUSALS[code][0]) {
    case 'invalid_grant':
      return new InvalidGrant(code as GrantRefusal, check)
    case 'invalid_token':
      return new InvalidToken(code as TokenRefusal, check)
    case 'slow_down':
      return new TooManyRequests(7, code as ThrottleRefusal)
    case 'invalid_client':
      return new InvalidClient(code as ClientRefusal)
    case 'use_dpop_nonce':
      return new UseDpopNonce('a-fresh-nonce', code as NonceRefusal)
  }
}

/** The rows of the code table in docs/design.md: code -> [error, meaning]. */
function documented(): Map<string, [string, string]> {
  const design = readFileSync(join(ROOT, 'docs/design.md'), 'utf8')
  const section = design.split('### Refusal codes')[1]?.split('\n## ')[0] ?? ''
  const rows = new Map<string, [string, string]>()
  for (const line of section.split('\n')) {
    const cells = /^\| `([a-z0-9_]+)`\s*\| `([a-z_]+)`\s*\| (.*?)\s*\|$/.exec(line)
    if (cells) rows.set(cells[1] as string, [cells[2] as string, cells[3] as string])
  }
  return rows
}

/** Every TypeScript source that runs: the functions and local mode. */
function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !file.endsWith('refusals.ts'))
    .map((file) => readFileSync(join(ROOT, dir, file), 'utf8'))
}

describe('refusal codes', () => {
  it('are each in the code table of docs/design.md, with their error and meaning, and the table lists no other', () => {
    const table = documented()
    expect([...table.keys()]).toEqual(REFUSAL_CODES)
    for (const code of REFUSAL_CODES) {
      expect(table.get(code), code).toEqual([REFUSALS[code][0], REFUSALS[code][1]])
    }
  })

  it('are each given by some refusal in the code: none is dead', () => {
    const code = [...sources('functions'), ...sources('local')].join('\n')
    const unused = REFUSAL_CODES.filter((name) => !code.includes(`'${name}'`))
    expect(unused).toEqual([])
  })

  it('are what the error carries, as its code and its logged detail', () => {
    for (const code of REFUSAL_CODES) {
      const error = refusal(code)
      expect(error.code).toBe(code)
      expect(error.detail).toBe(code)
      expect(error.error).toBe(REFUSALS[code][0])
    }
  })
})

describe('the public answer to a refusal', () => {
  afterEach(() => vi.restoreAllMocks())

  const event = {
    version: '2.0',
    routeKey: 'POST /token',
    rawPath: '/token',
    rawQueryString: '',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=refresh_token',
    isBase64Encoded: false,
    requestContext: { http: { method: 'POST', path: '/token' }, requestId: 'r1' },
  } as unknown as APIGatewayProxyEventV2
  const context = {
    functionName: 'token',
    awsRequestId: 'r1',
    getRemainingTimeInMillis: () => 5000,
  } as unknown as Context

  /** The response and the `request refused` line of a route that throws `error`. */
  async function answer(error: OAuthError) {
    const lines: string[] = []
    for (const stream of [process.stdout, process.stderr]) {
      vi.spyOn(stream, 'write').mockImplementation(((chunk: unknown) => {
        lines.push(String(chunk))
        return true
      }) as typeof stream.write)
    }
    const handler = httpHandler(
      async () => {
        throw error
      },
      {},
      { ...createObservability(new Logger({ serviceName: 'token-service' })), corsOrigins: [] },
      HTTP_FUNCTIONS.token.http,
    )
    const response = await handler(event, context)
    vi.restoreAllMocks()
    const logged = lines
      .flatMap((chunk) => chunk.split('\n'))
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((line) => line.message === 'request refused')
    return { response, logged }
  }

  it('never varies with the code, nor shows it; the log line carries the code (and its check)', async () => {
    const byError = new Map<string, string>()
    for (const code of REFUSAL_CODES) {
      const error = refusal(code, 'jku')
      const { response, logged } = await answer(error)
      const { statusCode, headers, body } = response
      const seen = JSON.stringify({ statusCode, headers, body })
      expect(body, code).not.toContain(code)
      expect(body, code).not.toContain('jku')
      const first = byError.get(REFUSALS[code][0]) ?? seen
      byError.set(REFUSALS[code][0], first)
      expect(seen, code).toBe(first)
      expect(logged?.detail, code).toBe(code)
      expect(logged?.check, code).toBe(error.check)
    }
    expect([...byError.keys()].sort()).toEqual([
      'invalid_client',
      'invalid_grant',
      'invalid_token',
      'slow_down',
      'use_dpop_nonce',
    ])
  })

  it('is its own for home_unreachable alone: the SDK must tell a lost home region from a dead session', async () => {
    const { response, logged } = await answer(new HomeUnreachable('eu-west-1'))
    expect(response.statusCode).toBe(400)
    expect(JSON.parse(response.body as string)).toEqual({
      error: 'invalid_grant',
      error_description: HOME_UNREACHABLE_DESCRIPTION,
    })
    expect(HOME_UNREACHABLE_DESCRIPTION).not.toBe(INVALID_GRANT_DESCRIPTION)
    expect(logged?.detail).toBe('home_unreachable')
    expect(logged?.check).toBe('eu-west-1')
  })
})
