/**
 * Local mode's log lines, as a person reads them at `npm start`'s terminal: each names the
 * function that wrote it and its request, as in Lambda where each is its own function.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addCheapUser, bearer, type Harness, startHarness } from '../support/harness.js'
import { capture } from '../support/secrets.js'

let h: Harness
beforeAll(async () => {
  h = await startHarness({ env: { POWERTOOLS_LOG_LEVEL: 'INFO' } })
})
afterAll(() => h?.close())

/** The JSON log lines written since `from` (an index into the captured output). */
const logLines = (from: number) =>
  capture()
    .output.slice(from)
    .join('')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)

describe('the authorizer’s log lines in local mode', () => {
  it('carry the authorizer’s own function name and request id, not the last login’s', async () => {
    const user = await addCheapUser(h, 'logs')
    const from = capture().output.length
    const login = await h.login(user)
    expect(login.status).toBe(200)
    const token = String(login.body.access_token)
    const refused = await h.get('/me', bearer(`${token.slice(0, -4)}AAAA`))
    expect(refused.status).toBe(401)

    const lines = logLines(from)
    const loginLine = lines.find((line) => line.function_name === 'login')
    const refusal = lines.find((line) => line.message === 'token refused')
    expect(loginLine?.function_request_id).toEqual(expect.any(String))
    expect(refusal).toMatchObject({
      function_name: 'authorizer',
      function_request_id: expect.any(String),
    })
    expect(refusal?.function_request_id).not.toBe(loginLine?.function_request_id)
  })
})
