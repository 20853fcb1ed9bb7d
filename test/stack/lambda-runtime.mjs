/**
 * A Lambda sandbox for one function of the synthesized stack, run as a plain
 * `node` child process (no test loader): it imports the bundle from the cloud
 * assembly with the environment the parent gives it, then runs invocations
 * that arrive over IPC. Argv: bundle file, export name, API hosts (the API's
 * own, then any hostname that resolves to it, comma-separated), front origin,
 * clock offset (ms).
 *
 * Two things differ from Lambda, both for the harness's sake:
 * - fetches to the API's own host (`<api-id>.execute-api.local.amazonaws.com`),
 *   or to a hostname in front of it (the one issuer of several regions), go to
 *   the HTTP front on 127.0.0.1 instead, as if DNS pointed there; only `fetch`
 *   is redirected;
 * - the clock (`Date`) runs `offset` ms ahead, as the parent says, so that
 *   tests move time (grace windows, caches) without sleeping.
 */
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'

const [bundle, exportName, apiHosts, frontOrigin, offset] = process.argv.slice(2)
const hosts = new Set(apiHosts.split(','))

let clockOffset = Number(offset)
const SystemDate = Date
const now = () => SystemDate.now() + clockOffset
// `Date.now()`, `new Date()` and `Date()` all read the moved clock; the rest of Date is as is.
globalThis.Date = new Proxy(SystemDate, {
  construct: (target, args, newTarget) =>
    Reflect.construct(target, args.length ? args : [now()], newTarget),
  apply: () => new SystemDate(now()).toString(),
  get: (target, property, receiver) =>
    property === 'now' ? now : Reflect.get(target, property, receiver),
})

const systemFetch = globalThis.fetch
globalThis.fetch = (input, init) => {
  const original = new Request(input, init)
  const url = new URL(original.url)
  if (!hosts.has(url.host)) return systemFetch(original)
  return systemFetch(new Request(`${frontOrigin}${url.pathname}${url.search}`, original))
}

// Listening first: a clock message may come while the bundle loads.
const loading = import(pathToFileURL(bundle).href).then((module) => module[exportName])

// A sandbox never outlives the test process that started it.
process.on('disconnect', () => process.exit(0))

process.on('message', async (message) => {
  if (message.type === 'clock') {
    clockOffset = message.offsetMs
    return
  }
  const { id, event, timeoutMs, context } = message
  const deadline = performance.now() + timeoutMs
  const lambdaContext = {
    ...context,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, Math.round(deadline - performance.now())),
  }
  // The invocation's CPU time (user + system), as Lambda bills a vCPU share of its duration.
  // The event loop serves one invocation at a time here, as Lambda does.
  const cpu = process.cpuUsage()
  try {
    const result = await (await loading)(event, lambdaContext)
    const used = process.cpuUsage(cpu)
    process.send({ type: 'result', id, result, cpuMs: (used.user + used.system) / 1000 })
  } catch (error) {
    process.send({ type: 'error', id, error: `${error?.name}: ${error?.message}` })
  }
})

try {
  if (typeof (await loading) !== 'function') throw new Error(`the bundle exports no ${exportName}`)
  // Since the process started: Lambda's Init Duration plus Node's own start-up.
  process.send({ type: 'ready', initMs: performance.now() })
} catch (error) {
  process.send({ type: 'init-error', message: `${error?.name}: ${error?.message}` })
}
