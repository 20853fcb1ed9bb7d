/**
 * `npm run load`: a soak of local mode. Starts `bin/local.ts` as a child process (its own
 * DynamoDB Local on a free port), drives it from this process for a fixed time and a bounded
 * number of requests with a mix of 70% refresh, 20% GET /me, 5% login and 5% revoke, then
 * prints throughput and latency per route, errors and the server's RSS at the start and the
 * end, and writes them to bench/results/load-<date>.json.
 *
 * Settings (environment): LOAD_SECONDS @default 30, LOAD_CONNECTIONS @default 16,
 * LOAD_MAX_REQUESTS @default 50000, LOAD_WARMUP_SECONDS (the same mix, not measured, before
 * the first RSS reading) @default 10. It only ever sends to 127.0.0.1.
 */

import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../local/dynamodb-local.js'

type RouteName = 'refresh' | 'me' | 'login' | 'revoke'

/** 20 slots: 14 refresh, 4 /me, 1 login, 1 revoke, interleaved. */
const SCHEDULE: RouteName[] = [
  'refresh', 'me', 'refresh', 'refresh', 'login', 'refresh', 'me', 'refresh', 'refresh', 'refresh',
  'revoke', 'refresh', 'me', 'refresh', 'refresh', 'refresh', 'me', 'refresh', 'refresh', 'refresh',
] // biome-ignore format: the mix reads best as two rows of ten

const CLIENT_ID = 'demo-native'
const USERNAME = 'demo'

interface Session {
  refreshToken: string
  accessToken: string
}

const setting = (name: string, fallback: number): number => {
  const raw = process.env[name]
  if (!raw) return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`)
  return value
}

async function main() {
  const seconds = setting('LOAD_SECONDS', 30)
  const connections = setting('LOAD_CONNECTIONS', 16)
  const maxRequests = setting('LOAD_MAX_REQUESTS', 50_000)
  const warmupSeconds = setting('LOAD_WARMUP_SECONDS', 10)
  const password = `load-${process.pid}-${Date.now()}`

  const port = await freePort()
  const keyDir = mkdtempSync(join(tmpdir(), 'load-keys-'))
  const server = await startServer({
    PORT: String(port),
    DYNAMODB_PORT: String(await freePort()),
    DEMO_PASSWORD: password,
    LOCAL_KEY_DIR: keyDir,
    DATA_DIR: '',
    POWERTOOLS_LOG_LEVEL: 'WARN',
  })
  const base = `http://127.0.0.1:${port}`

  try {
    const post = (path: string, form: Record<string, string>) =>
      fetch(`${base}${path}`, { method: 'POST', body: new URLSearchParams(form) })
    const login = async (): Promise<Session> => {
      const response = await post('/login', { username: USERNAME, password, client_id: CLIENT_ID })
      if (response.status !== 200) throw new HttpError('login', response.status)
      const body = (await response.json()) as { refresh_token: string; access_token: string }
      return { refreshToken: body.refresh_token, accessToken: body.access_token }
    }

    // A shared pool of sessions: a request takes one out for its duration, so no two requests
    // rotate the same token at once (that is the races suite's job, not the soak's).
    const pool: Session[] = []
    for (let i = 0; i < connections * 2; i++) pool.push(await login())

    const calls: Record<RouteName, () => Promise<void>> = {
      login: async () => {
        pool.push(await login())
      },
      refresh: async () => {
        const session = take(pool)
        if (!session) return calls.login()
        const response = await post('/token', {
          grant_type: 'refresh_token',
          refresh_token: session.refreshToken,
          client_id: CLIENT_ID,
        })
        if (response.status !== 200) throw new HttpError('refresh', response.status)
        const body = (await response.json()) as { refresh_token: string; access_token: string }
        pool.push({ refreshToken: body.refresh_token, accessToken: body.access_token })
      },
      me: async () => {
        const session = take(pool)
        if (!session) return calls.login()
        const response = await fetch(`${base}/me`, {
          headers: { authorization: `Bearer ${session.accessToken}` },
        })
        await response.arrayBuffer()
        pool.push(session)
        if (response.status !== 200) throw new HttpError('me', response.status)
      },
      revoke: async () => {
        const session = take(pool)
        if (!session) return calls.login()
        const response = await post('/revoke', {
          token: session.refreshToken,
          client_id: CLIENT_ID,
        })
        await response.arrayBuffer()
        if (response.status !== 200) throw new HttpError('revoke', response.status)
      },
    }

    /** `connections` workers run the schedule until the time or the request count is spent. */
    const drive = async (
      forSeconds: number,
      maxCount: number,
      record: (route: RouteName, ms: number, error?: unknown) => void,
    ) => {
      let next = 0
      const deadline = performance.now() + forSeconds * 1000
      const worker = async () => {
        while (performance.now() < deadline && next < maxCount) {
          const route = SCHEDULE[next++ % SCHEDULE.length] as RouteName
          const t0 = performance.now()
          try {
            await calls[route]()
            record(route, performance.now() - t0)
          } catch (error) {
            record(route, performance.now() - t0, error)
          }
        }
      }
      await Promise.all(Array.from({ length: connections }, worker))
    }

    // Warm up with the same mix at full concurrency (JIT, connection pools, key caches, and the
    // allocator arenas of the threads that run scrypt), so that RSS drift measures the soak only.
    await drive(warmupSeconds, Number.POSITIVE_INFINITY, () => {})
    const rssStart = rssKiB(server.pid)

    const latencies: Record<RouteName, number[]> = { refresh: [], me: [], login: [], revoke: [] }
    const errors: Record<string, number> = {}
    const rssSamples: { atSeconds: number; rssKiB: number }[] = [{ atSeconds: 0, rssKiB: rssStart }]
    const started = performance.now()
    const sampler = setInterval(() => {
      rssSamples.push({
        atSeconds: Math.round((performance.now() - started) / 100) / 10,
        rssKiB: rssKiB(server.pid),
      })
    }, 1000)
    await drive(seconds, maxRequests, (route, ms, error) => {
      if (error === undefined) {
        latencies[route].push(ms)
        return
      }
      const key =
        error instanceof HttpError
          ? `${error.route} ${error.status}`
          : `${route} ${(error as Error).name}`
      errors[key] = (errors[key] ?? 0) + 1
    })
    const elapsed = (performance.now() - started) / 1000
    clearInterval(sampler)
    const rssEnd = rssKiB(server.pid)
    rssSamples.push({ atSeconds: Math.round(elapsed * 10) / 10, rssKiB: rssEnd })

    const all = Object.values(latencies).flat()
    const routes = Object.fromEntries(
      (Object.keys(latencies) as RouteName[]).map((route) => [
        route,
        {
          requests: latencies[route].length,
          perSecond: round(latencies[route].length / elapsed),
          ...summary(latencies[route]),
        },
      ]),
    )
    const errorCount = Object.values(errors).reduce((a, b) => a + b, 0)
    const result = {
      date: new Date().toISOString(),
      node: process.version,
      settings: {
        seconds,
        connections,
        maxRequests,
        mix: '70% refresh, 20% /me, 5% login, 5% revoke',
      },
      elapsedSeconds: round(elapsed),
      requests: all.length,
      perSecond: round(all.length / elapsed),
      latencyMs: summary(all),
      routes,
      errors: errorCount,
      errorsByRoute: errors,
      serverRssKiB: {
        start: rssStart,
        end: rssEnd,
        // While logins run, each scrypt hash holds 128 MiB (N=2^17, r=8) on a libuv thread.
        peak: Math.max(...rssSamples.map((sample) => sample.rssKiB)),
        driftPercent: round(((rssEnd - rssStart) / rssStart) * 100),
      },
      rssSamples,
    }

    const dir = new URL('./results/', import.meta.url)
    mkdirSync(dir, { recursive: true })
    const file = new URL(`load-${result.date.slice(0, 10)}.json`, dir)
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`)

    console.log(
      `\nLoad: ${result.requests} requests in ${result.elapsedSeconds} s over ${connections} connections (${result.perSecond}/s)`,
    )
    console.log('route      requests      /s     p50 ms    p99 ms    max ms')
    for (const [route, r] of Object.entries(routes)) {
      console.log(
        `${route.padEnd(10)}${String(r.requests).padStart(9)}${String(r.perSecond).padStart(8)}${String(r.p50).padStart(11)}${String(r.p99).padStart(10)}${String(r.max).padStart(10)}`,
      )
    }
    console.log(
      `all       ${String(result.requests).padStart(9)}${String(result.perSecond).padStart(8)}${String(result.latencyMs.p50).padStart(11)}${String(result.latencyMs.p99).padStart(10)}${String(result.latencyMs.max).padStart(10)}`,
    )
    console.log(`errors: ${errorCount}${errorCount ? ` ${JSON.stringify(errors)}` : ''}`)
    console.log(
      `server RSS: ${mib(rssStart)} MiB at the start, ${mib(rssEnd)} MiB at the end (${result.serverRssKiB.driftPercent}%), peak ${mib(result.serverRssKiB.peak)} MiB (scrypt: 128 MiB per hash in flight)`,
    )
    console.log(`written to ${file.pathname}`)
    if (errorCount > 0) process.exitCode = 1
  } finally {
    await stopServer(server)
    rmSync(keyDir, { recursive: true, force: true })
  }
}

class HttpError extends Error {
  constructor(
    readonly route: string,
    readonly status: number,
  ) {
    super(`${route} answered ${status}`)
  }
}

function take(pool: Session[]): Session | undefined {
  if (pool.length === 0) return undefined
  const index = Math.floor(Math.random() * pool.length)
  const [session] = pool.splice(index, 1)
  return session
}

function summary(values: number[]) {
  if (values.length === 0) return { p50: 0, p99: 0, max: 0 }
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number) =>
    round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number)
  return { p50: at(0.5), p99: at(0.99), max: round(sorted[sorted.length - 1] as number) }
}

const round = (n: number) => Math.round(n * 10) / 10
const mib = (kib: number) => round(kib / 1024)

/** Resident set size of a process, from /proc (Linux). */
function rssKiB(pid: number | undefined): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status)
  if (!match) throw new Error('no VmRSS in /proc status')
  return Number(match[1])
}

async function startServer(env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bin/local.ts'], {
    cwd: new URL('..', import.meta.url),
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  await new Promise<void>((resolve, reject) => {
    let output = ''
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('Token service running at')) {
        child.stdout?.off('data', onData)
        child.stdout?.resume() // keep draining, or the child blocks on a full pipe
        resolve()
      }
    }
    child.stdout?.on('data', onData)
    child.once('exit', (code) =>
      reject(new Error(`the local server exited (${code}) before it was ready`)),
    )
  })
  return child
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  await exited
}

main().catch((error) => {
  console.error(`npm run load: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
})
