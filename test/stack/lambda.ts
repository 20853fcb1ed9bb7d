/**
 * One function of the synthesized stack as Lambda runs it: its bundle from the
 * cloud assembly in a sandbox of its own (a child process, started on the first
 * invocation: a cold start), with its template environment plus what Lambda
 * adds. See lambda-runtime.mjs for the sandbox side.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const RUNTIME = fileURLToPath(new URL('./lambda-runtime.mjs', import.meta.url))

export interface LambdaOptions {
  /** For reports: `login`, `authorizer`, ... */
  readonly name: string
  /** The physical function name and ARN. */
  readonly functionName: string
  readonly arn: string
  readonly codeDirectory: string
  /** The template's `Handler`, e.g. `index.handler`. */
  readonly handler: string
  /** The template's `Environment.Variables`, resolved. */
  readonly environment: Record<string, string>
  readonly timeoutSeconds: number
  readonly memoryMiB: number
  /** What the sandbox adds: region, credentials, endpoints (see Deployment). */
  readonly sandbox: Record<string, string>
  readonly apiHost: string
  /** Other hostnames whose fetches reach this front (DNS in front of the API). */
  readonly hostnames?: readonly string[]
  readonly frontOrigin: string
  readonly onOutput: (text: string) => void
}

export class FunctionError extends Error {
  override readonly name = 'FunctionError'
}

/** What lambda-runtime.mjs sends back. */
interface SandboxMessage {
  readonly type: 'ready' | 'init-error' | 'result' | 'error'
  readonly id?: string
  readonly initMs?: number
  readonly result?: unknown
  readonly error?: string
  readonly message?: string
  /** The invocation's CPU time, user and system, ms. */
  readonly cpuMs?: number
}

interface Sandbox {
  readonly child: ChildProcess
  readonly ready: Promise<void>
}

export class LambdaFunction {
  readonly options: LambdaOptions
  /** Cold-start times (process start to module loaded), ms. */
  readonly inits: number[] = []
  /** Each successful invocation's CPU time (user + system), ms, in order. */
  readonly cpuMs: number[] = []
  invocations = 0
  #sandbox: Sandbox | undefined
  #clockOffsetMs = 0
  readonly #pending = new Map<
    string,
    { resolve: (value: unknown) => void; reject: (error: Error) => void }
  >()

  constructor(options: LambdaOptions) {
    this.options = options
  }

  /** Moves the sandbox's `Date.now()` (and that of sandboxes started later). */
  setClockOffset(offsetMs: number): void {
    this.#clockOffsetMs = offsetMs
    this.#sandbox?.child.send({ type: 'clock', offsetMs })
  }

  /** Runs one invocation; rejects with `FunctionError` when the function fails or times out. */
  async invoke(event: unknown): Promise<unknown> {
    this.invocations++
    const sandbox = this.#start()
    await sandbox.ready
    const id = randomUUID()
    const { functionName, arn, memoryMiB, timeoutSeconds } = this.options
    const result = new Promise<unknown>((resolve, reject) =>
      this.#pending.set(id, { resolve, reject }),
    )
    const timer = setTimeout(() => {
      // Lambda ends a sandbox whose invocation timed out; the next one starts cold.
      this.#fail(sandbox, `Task timed out after ${timeoutSeconds} seconds`)
    }, timeoutSeconds * 1000)
    sandbox.child.send({
      type: 'invoke',
      id,
      event,
      timeoutMs: timeoutSeconds * 1000,
      context: {
        functionName,
        functionVersion: '$LATEST',
        invokedFunctionArn: arn,
        memoryLimitInMB: String(memoryMiB),
        awsRequestId: id,
        logGroupName: `/aws/lambda/${functionName}`,
        logStreamName: 'stack-harness',
      },
    })
    try {
      return await result
    } finally {
      clearTimeout(timer)
    }
  }

  stop(): void {
    if (this.#sandbox) this.#fail(this.#sandbox, 'stopped')
  }

  #start(): Sandbox {
    if (this.#sandbox) return this.#sandbox
    const {
      codeDirectory,
      handler,
      environment,
      sandbox: added,
      apiHost,
      frontOrigin,
    } = this.options
    const [file, exportName] = handler.split('.') as [string, string]
    const child = fork(
      RUNTIME,
      [
        join(codeDirectory, `${file}.mjs`),
        exportName,
        [apiHost, ...(this.options.hostnames ?? [])].join(','),
        frontOrigin,
        String(this.#clockOffsetMs),
      ],
      // Exactly the template's variables and the sandbox's: nothing of the test process.
      { env: { ...environment, ...added }, execArgv: [], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] },
    )
    child.stdout?.on('data', (chunk: Buffer) => this.options.onOutput(chunk.toString()))
    child.stderr?.on('data', (chunk: Buffer) => this.options.onOutput(chunk.toString()))
    const ready = new Promise<void>((resolve, reject) => {
      child.on('message', (message: SandboxMessage) => {
        if (message.type === 'ready') {
          this.inits.push(Math.round(message.initMs ?? 0))
          resolve()
        } else if (message.type === 'init-error') {
          reject(new FunctionError(`${this.options.name} init failed: ${message.message}`))
          this.#fail(sandbox, 'init failed')
        } else {
          const pending = this.#pending.get(message.id ?? '')
          this.#pending.delete(message.id ?? '')
          if (message.type === 'result') {
            if (message.cpuMs !== undefined) this.cpuMs.push(message.cpuMs)
            pending?.resolve(message.result)
          } else pending?.reject(new FunctionError(`${this.options.name}: ${message.error}`))
        }
      })
      const end = (why: string) => {
        reject(new FunctionError(`${this.options.name} ${why} during init`))
        this.#fail(sandbox, why)
      }
      child.on('exit', (code) => end(`exited with ${code}`))
      child.on('error', (error) => end(error.message))
    })
    ready.catch(() => {})
    const sandbox: Sandbox = { child, ready }
    this.#sandbox = sandbox
    return sandbox
  }

  #fail(sandbox: Sandbox, why: string): void {
    if (this.#sandbox !== sandbox) return
    this.#sandbox = undefined
    sandbox.child.kill()
    for (const { reject } of this.#pending.values())
      reject(new FunctionError(`${this.options.name}: ${why}`))
    this.#pending.clear()
  }
}
