/**
 * What a warm call costs, measured on what `cdk synth` produces (docs/design.md
 * "Performance budget"): the bundles behind the template's routes, DynamoDB
 * Local's consumed capacity (`ReturnConsumedCapacity: INDEXES`, table plus
 * indexes, asked for by the cloud on the way through) and the KMS requests,
 * per function, as the mean of 12 warm calls with a Chrome user agent (a call
 * the SDK retried a request of is left out, and counted in the report). The
 * capacity model (lib/capacity/) prices exactly these figures: a test here
 * fails when the two disagree.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { type CallCost, MEASURED_PER_CALL } from '../../lib/capacity/per-call.js'
import { client, NATIVE_CLIENT, PASSWORD, seedUser } from './api.js'
import { type Assembly, synthesize } from './assembly.js'
import { Cloud, type MeteredCall } from './cloud.js'
import { Deployment } from './deployment.js'

/** How many warm calls each figure is the mean of. */
const CALLS = 12
const CHROME =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36'

const configurations = {
  kms: { stackName: 'TokenServiceCapacity' },
  envelope: { stackName: 'TokenServiceCapacityEnvelope', signing: 'envelope' },
}
type Mode = keyof typeof configurations

let assembly: Assembly<Mode>
const dynamodbLocal = inject('dynamoEndpoint')
const cloud = new Cloud(dynamodbLocal)
const reports: string[] = []

beforeAll(async () => {
  assembly = synthesize(configurations)
  await cloud.start()
}, 240_000)

afterAll(async () => {
  console.log(reports.join('\n\n'))
  await cloud.stop()
  assembly?.remove()
})

const READS = new Set(['GetItem', 'BatchGetItem', 'Query', 'Scan', 'TransactGetItems'])

/** The mean cost of `calls` (each made by `fn`), from the meter's records of that function. */
function meanCost(calls: readonly (readonly MeteredCall[])[]): CallCost {
  const units = (call: MeteredCall) =>
    (call.table ?? 0) + Object.values(call.indexes ?? {}).reduce((sum, u) => sum + u, 0)
  const mean = (pick: (call: MeteredCall) => number) =>
    calls.reduce((sum, one) => sum + one.reduce((s, call) => s + pick(call), 0), 0) / calls.length
  const dynamodb = (calls[0] ?? []).filter((call) => call.service === 'dynamodb')
  const kms: Record<string, number> = {}
  for (const one of calls) {
    for (const call of one.filter((c) => c.service === 'kms')) {
      kms[call.operation] = (kms[call.operation] ?? 0) + 1 / calls.length
    }
  }
  return {
    readUnits: mean((call) =>
      call.service === 'dynamodb' && READS.has(call.operation) ? units(call) : 0,
    ),
    writeUnits: mean((call) =>
      call.service === 'dynamodb' && !READS.has(call.operation) ? units(call) : 0,
    ),
    billedWriteUnits: mean((call) =>
      call.service === 'dynamodb' && !READS.has(call.operation) ? (call.billed ?? units(call)) : 0,
    ),
    kms,
    // Sorted: calls a function makes in parallel finish in any order.
    dynamodb: dynamodb
      .map((call) => {
        const indexes = Object.entries(call.indexes ?? {}).filter(([, u]) => u > 0)
        const detail = indexes.map(([name, u]) => `, ${name} ${u}`).join('')
        const billed = call.billed === undefined ? '' : `, billed ${call.billed}`
        return `${call.operation} ${units(call)}${detail || billed ? ` (table ${call.table}${detail}${billed})` : ''}`
      })
      .sort(),
  }
}

/**
 * Makes `call` until `CALLS` of them ran without a retry, and returns what each of those
 * cost, as `fn` made it, the mean wall time of a call through the front (for the report
 * only: timing is never asserted), and how many calls were left out because the SDK retried
 * one of their requests (a shared machine's DynamoDB Local can pass the 1 s call timeout):
 * the figure is a warm call's, and retries are the retry budget's (retry-budget.test.ts).
 */
async function meter(
  fn: string,
  call: () => Promise<void>,
): Promise<{ calls: MeteredCall[][]; meanMs: number; retried: number }> {
  const each: MeteredCall[][] = []
  let retried = 0
  const started = performance.now()
  while (each.length < CALLS) {
    const mark = cloud.meter.length
    await call()
    const records = cloud.meter.slice(mark)
    if (records.some((record) => record.attempt !== undefined)) {
      retried++
      if (retried > CALLS) throw new Error(`${fn}: more calls retried than not`)
      continue
    }
    each.push(records.filter((record) => record.caller === fn))
  }
  return { calls: each, meanMs: (performance.now() - started) / (CALLS + retried), retried }
}

const format = (name: string, cost: CallCost) =>
  `  ${name}: ${cost.readUnits} RCU, ${cost.writeUnits} WCU (${cost.billedWriteUnits} billed), KMS ${JSON.stringify(cost.kms)}; ${cost.dynamodb.join(', ')}`

for (const mode of Object.keys(configurations) as Mode[]) {
  describe(`a warm call on the synthesized stack, signing: ${mode}`, () => {
    let deployment: Deployment
    let user: string
    const measured = {} as Record<'refresh' | 'login', CallCost>
    const wallMs = {} as Record<'refresh' | 'login', number>
    const retried = {} as Record<'refresh' | 'login', number>
    /** Mean CPU time of a warm call, per function (docs/benchmarks.md "Memory per function"). */
    const cpuMs: Record<string, number> = {}
    beforeAll(async () => {
      deployment = await Deployment.start(cloud, { functions: assembly.templates[mode] })
      user = await seedUser(deployment, dynamodbLocal)
      const api = client(deployment)
      const headers = { 'user-agent': CHROME }
      const login = () =>
        api.call('POST', '/login', {
          form: { username: user, password: PASSWORD, client_id: NATIVE_CLIENT },
          headers,
        })
      const refresh = (token: string) =>
        api.call('POST', '/token', {
          form: { grant_type: 'refresh_token', refresh_token: token, client_id: NATIVE_CLIENT },
          headers,
        })
      // Cold starts, public keys and the grace data key: off the measured calls.
      let token = (await login()).body.refresh_token as string
      token = (await refresh(token)).body.refresh_token
      const refreshes = await meter('token', async () => {
        const reply = await refresh(token)
        expect(reply.status).toBe(200)
        token = reply.body.refresh_token
      })
      const logins = await meter('login', async () => {
        expect((await login()).status).toBe(200)
      })
      // A bearer call (the authorizer, then me) and a JWKS fetch, warm, for their CPU time.
      const access = (await login()).body.access_token as string
      for (let n = 0; n < 2; n++) await api.call('GET', '/me', { token: access, headers })
      await api.call('GET', '/.well-known/jwks.json', { headers })
      for (let n = 0; n < CALLS; n++) {
        expect((await api.call('GET', '/me', { token: access, headers })).status).toBe(200)
        expect((await api.call('GET', '/.well-known/jwks.json', { headers })).status).toBe(200)
      }
      for (const [name, fn] of deployment.functions) {
        const warm = fn.lambda.cpuMs.slice(-CALLS)
        if (fn.lambda.cpuMs.length > CALLS) {
          cpuMs[name] = warm.reduce((sum, ms) => sum + ms, 0) / warm.length
        }
      }
      measured.refresh = meanCost(refreshes.calls)
      measured.login = meanCost(logins.calls)
      wallMs.refresh = refreshes.meanMs
      wallMs.login = logins.meanMs
      retried.refresh = refreshes.retried
      retried.login = logins.retried
    })
    afterAll(async () => {
      reports.push(
        [
          `Warm calls, signing ${mode}, mean of ${CALLS} (DynamoDB Local's consumed capacity, table plus indexes):`,
          format('refresh (POST /token)', measured.refresh),
          format('login (POST /login)', measured.login),
          `  mean wall time through the front (a shared machine; compare the modes): refresh ${wallMs.refresh.toFixed(1)} ms, login ${wallMs.login.toFixed(1)} ms`,
          `  calls left out because the SDK retried a request: refresh ${retried.refresh}, login ${retried.login}`,
          `  mean CPU time of a warm call, per function (user + system, ms): ${Object.entries(cpuMs)
            .map(([name, ms]) => `${name} ${ms.toFixed(1)}`)
            .join(', ')}`,
        ].join('\n'),
      )
      await deployment.stop()
    })

    it('costs what the capacity model prices (lib/capacity/per-call.ts)', () => {
      expect(measured).toEqual(MEASURED_PER_CALL[mode])
    })

    it('spends far less CPU than its time on a warm refresh, a bearer call and a JWKS fetch (they wait on I/O), and scrypt’s CPU on a login (docs/benchmarks.md "Memory per function")', () => {
      // The refresh, the authorizer and me sized at 512 MB or less: a warm call uses a few ms of
      // CPU. A login spends scrypt's (N=2^17) 100 ms or more of CPU: it keeps a whole vCPU.
      for (const name of ['token', 'me', 'jwks']) {
        expect(cpuMs[name], name).toBeLessThan(40)
      }
      expect(cpuMs.login).toBeGreaterThan(100)
    })

    it('makes no AWS call its IAM policy does not allow', () => {
      expect(deployment.denials()).toEqual([])
    })

    it('keeps a warm refresh within 2 read and 2 write units, billed or reported, and a warm login within 5 write units (docs/design.md "Performance budget")', () => {
      expect(measured.refresh.readUnits).toBeLessThanOrEqual(2)
      expect(measured.refresh.writeUnits).toBeLessThanOrEqual(2)
      expect(measured.refresh.billedWriteUnits).toBeLessThanOrEqual(2)
      expect(measured.login.writeUnits).toBeLessThanOrEqual(5)
    })
  })
}
