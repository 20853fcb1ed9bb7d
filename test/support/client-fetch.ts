import type { FetchLike } from '../../client/index.js'
import { hashToken } from '../../functions/core/refresh-token.js'
import { recordSecret } from './secrets.js'

export interface Call {
  readonly method: string
  readonly path: string
  /** 1 for the first call of this method and path, 2 for the second, ... */
  readonly nth: number
  /** The request's abort signal (the client's per-attempt timeout). */
  readonly signal: AbortSignal
  /** Sends the call to the server (and records the tokens it answers with). */
  forward(): Promise<Response>
}

/** Answers a call itself (a fault, a lost response), or returns undefined to let it through. */
export type Intercept = (call: Call) => Promise<Response | undefined> | Response | undefined

export interface TestFetch extends FetchLike {
  /** Every call, as `METHOD /path`, in order. */
  readonly calls: string[]
  count(method: string, path: string): number
}

/**
 * The `fetch` a test hands to the token client: the real one, with every call
 * counted, every token in an answer passed to `recordSecret`, and a hook to
 * put faults between the client and the server.
 */
export function testFetch(intercept?: Intercept): TestFetch {
  const calls: string[] = []
  const count = (method: string, path: string) =>
    calls.filter((call) => call === `${method} ${path}`).length
  const fn = async (input: string | URL | Request, init?: RequestInit) => {
    const request = new Request(input, init)
    const key = `${request.method} ${new URL(request.url).pathname}`
    calls.push(key)
    const [method, path] = key.split(' ') as [string, string]
    // Forwarded calls ignore the client's per-attempt timeout: a server slowed down by a
    // loaded machine must not fail a test. Hangs are the intercept's to model.
    const forward = async () => recordTokens(await fetch(new Request(request, { signal: null })))
    return (
      (await intercept?.({
        method,
        path,
        nth: count(method, path),
        signal: request.signal,
        forward,
      })) ?? forward()
    )
  }
  return Object.assign(fn, { calls, count })
}

/** Records the tokens of an answer as secrets, and leaves the answer readable. */
export async function recordTokens(response: Response): Promise<Response> {
  const text = await response.clone().text()
  try {
    const body = JSON.parse(text) as { access_token?: string; refresh_token?: string }
    recordSecret(body.access_token, body.refresh_token)
    if (body.refresh_token) recordSecret(hashToken(body.refresh_token))
  } catch {
    // not JSON: nothing to record
  }
  return response
}

/** An answer as a fault would give it. */
export const answer = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  })
