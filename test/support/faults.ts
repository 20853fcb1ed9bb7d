/**
 * Fault injection around the REAL AWS SDK clients.
 *
 * DynamoDB: SDK middleware on a real DynamoDBClient that talks to DynamoDB
 * Local. A fault plan names the command, which of its calls, the fault, whether
 * it hits only the first attempt (the SDK's own retry then goes through) or
 * every attempt, and whether it happens before the request reaches DynamoDB
 * Local or after DynamoDB Local committed it (the answer is lost). A dropped
 * connection is a real one: the request is routed through a small proxy that
 * closes the socket.
 *
 * KMS stays at the SDK boundary (test/support/fake-kms.ts), except for the
 * one fault that lives below it, a call slower than the SDK's timeout: there
 * `Sign` goes through the real SDK stack to an endpoint that never answers.
 */
import { createServer, request as httpRequest, type Server } from 'node:http'
import { type AddressInfo, createServer as createTcpServer, type Socket } from 'node:net'
import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  InternalServerError,
  ProvisionedThroughputExceededException,
  ThrottlingException,
  TransactionCanceledException,
  TransactionConflictException,
} from '@aws-sdk/client-dynamodb'
import {
  DecryptCommand,
  type DecryptCommandInput,
  DisabledException,
  GenerateDataKeyCommand,
  type GenerateDataKeyCommandInput,
  GetPublicKeyCommand,
  type GetPublicKeyCommandInput,
  KMSClient,
  KMSInternalException,
  SignCommand,
  type SignCommandInput,
} from '@aws-sdk/client-kms'
import type { FinalizeRequestMiddleware } from '@aws-sdk/types'
import { mockClient } from 'aws-sdk-client-mock'
import { type FakeKms, kmsError, throttling } from './fake-kms.js'

export type DynamoCommand =
  | 'Query'
  | 'GetItem'
  | 'BatchGetItem'
  | 'TransactWriteItems'
  | 'UpdateItem'
  | 'PutItem'

export type DynamoFault =
  | 'ProvisionedThroughputExceeded'
  | 'Throttling'
  | 'InternalServerError'
  | 'ConnectionDropped'
  | 'TransactionCanceled:ConditionalCheckFailed'
  | 'TransactionCanceled:TransactionConflict'
  | 'TransactionCanceled:ThrottlingError'
  /** A single-item write that collided with a transaction in progress. */
  | 'TransactionConflict'
  /** A single-item write's condition was false (no item returned with it). */
  | 'ConditionalCheckFailed'

/** Faults that the SDK retries by itself (throttling, 5xx, network). */
export const TRANSIENT_FAULTS: readonly DynamoFault[] = [
  'ProvisionedThroughputExceeded',
  'Throttling',
  'InternalServerError',
  'ConnectionDropped',
]

export interface FaultPlan {
  readonly command: DynamoCommand
  readonly fault: DynamoFault
  /** Which call of the command is hit, counted from when the plan is armed. @default 1 */
  readonly call?: number
  /**
   * `first`: only the first attempt of that call fails, the SDK's own retry
   * goes through. `every`: every attempt of that call and of every later call
   * of the command, until `clear()`. @default 'every'
   */
  readonly attempts?: 'first' | 'every'
  /**
   * `before`: the request never reaches DynamoDB. `after`: DynamoDB Local
   * executed (and for a write, committed) it, then the answer is lost.
   * @default 'before'
   */
  readonly when?: 'before' | 'after'
  /** Only calls whose request input this accepts count. @default every call */
  readonly match?: (input: unknown) => boolean
}

/** One call as the SDK made it: for coverage checks and for ordering in races. */
export interface CallRecord {
  readonly command: DynamoCommand
  readonly input: unknown
  /** performance.now() when the call started and when it settled (NaN while in flight). */
  readonly start: number
  end: number
}

interface Armed {
  readonly plan: Required<Omit<FaultPlan, 'match'>> & Pick<FaultPlan, 'match'>
  seen: number
}

interface Held {
  readonly command: DynamoCommand
  readonly match: ((input: unknown) => boolean) | undefined
  readonly reached: () => void
  readonly released: Promise<void>
  taken: boolean
}

/** A call held before it is sent: `reached` resolves once it waits, `release` lets it go. */
export interface Hold {
  readonly reached: Promise<void>
  release(): void
}

// biome-ignore lint/suspicious/noExplicitAny: the SDK's own middleware typing, any input/output
type AttemptMiddleware = FinalizeRequestMiddleware<any, any>

const CALL = Symbol('faultPlanCall')
type WithCall = Record<symbol, { faults: Armed[]; attempt: number } | undefined>

/** The targets of a DynamoDB request, e.g. `USER#…`, to tell calls of one command apart. */
export const mentions =
  (text: string) =>
  (input: unknown): boolean =>
    JSON.stringify(input).includes(text)

export class DynamoFaults {
  readonly calls: CallRecord[] = []
  /** Every fault injected, in order. */
  readonly fired: { command: DynamoCommand; fault: DynamoFault; attempt: number }[] = []
  readonly #armed: Armed[] = []
  readonly #holds: Held[] = []
  #proxy: DropProxy | undefined

  /** Adds the fault middleware to a client; returns the client. */
  install(client: DynamoDBClient): DynamoDBClient {
    // Once per call, outside the SDK's retry loop: decides which plans hit this call.
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const command = String(context.commandName).replace(/Command$/, '') as DynamoCommand
        const record: CallRecord = {
          command,
          input: args.input,
          start: performance.now(),
          end: NaN,
        }
        this.calls.push(record)
        const faults: Armed[] = []
        for (const armed of this.#armed) {
          const { plan } = armed
          if (plan.command !== command || (plan.match && !plan.match(args.input))) continue
          armed.seen++
          if (armed.seen === plan.call || (plan.attempts === 'every' && armed.seen > plan.call)) {
            faults.push(armed)
          }
        }
        ;(context as WithCall)[CALL] = { faults, attempt: 0 }
        const hold = this.#holds.find(
          (held) =>
            !held.taken && held.command === command && (!held.match || held.match(args.input)),
        )
        if (hold) {
          hold.taken = true
          hold.reached()
          await hold.released
        }
        try {
          return await next(args)
        } finally {
          record.end = performance.now()
        }
      },
      { step: 'initialize', name: 'faultPlanCall' },
    )
    // Once per attempt, inside the SDK's retry loop.
    const perAttempt: AttemptMiddleware = (next, context) => async (args) => {
      const state = (context as WithCall)[CALL]
      if (!state) return next(args)
      state.attempt++
      const armed = state.faults.find(
        (candidate) => candidate.plan.attempts === 'every' || state.attempt === 1,
      )
      if (!armed) return next(args)
      const { command, fault, when } = armed.plan
      this.fired.push({ command, fault, attempt: state.attempt })
      if (fault === 'ConnectionDropped') {
        this.#proxy ??= await DropProxy.start()
        return next({ ...args, request: this.#proxy.route(args.request, when) })
      }
      // DynamoDB answered (success, or the condition failure of a retry that met its own
      // commit); either way that answer is lost.
      if (when === 'after') await next(args).catch(() => undefined)
      throw faultError(fault, args.input)
    }
    client.middlewareStack.addRelativeTo(perAttempt, {
      relation: 'after',
      toMiddleware: 'retryMiddleware',
      name: 'faultPlanAttempt',
    })
    return client
  }

  arm(...plans: FaultPlan[]): void {
    for (const plan of plans) {
      this.#armed.push({
        plan: { call: 1, attempts: 'every', when: 'before', ...plan },
        seen: 0,
      })
    }
  }

  /** Holds the next matching call before it is sent, until released. */
  hold(command: DynamoCommand, match?: (input: unknown) => boolean): Hold {
    let reached!: () => void
    let release!: () => void
    const reachedPromise = new Promise<void>((resolve) => {
      reached = resolve
    })
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    this.#holds.push({ command, match, reached, released, taken: false })
    return { reached: reachedPromise, release }
  }

  /** Disarms every plan and hold, forgets the record. */
  clear(): void {
    this.#armed.length = 0
    this.#holds.length = 0
    this.calls.length = 0
    this.fired.length = 0
  }

  async close(): Promise<void> {
    await this.#proxy?.close()
  }
}

/** The exception DynamoDB would answer with, as the SDK would surface it. */
export function faultError(
  fault: Exclude<DynamoFault, 'ConnectionDropped'>,
  input: unknown,
): Error {
  const message = `injected fault: ${fault}`
  const $metadata = { httpStatusCode: 400 }
  switch (fault) {
    case 'ProvisionedThroughputExceeded':
      return new ProvisionedThroughputExceededException({ message, $metadata })
    case 'Throttling':
      return new ThrottlingException({ message, $metadata })
    case 'InternalServerError':
      return new InternalServerError({ message, $metadata: { httpStatusCode: 500 } })
    case 'TransactionConflict':
      return new TransactionConflictException({ message, $metadata })
    case 'ConditionalCheckFailed':
      return new ConditionalCheckFailedException({ message, $metadata })
    default: {
      // The reason goes to the first item (the session, in every transaction here).
      const reason = fault.slice(fault.indexOf(':') + 1)
      const items = (input as { TransactItems?: unknown[] }).TransactItems?.length ?? 1
      return new TransactionCanceledException({
        message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${reason}]`,
        $metadata,
        CancellationReasons: Array.from({ length: items }, (_, i) => ({
          Code: i === 0 ? reason : 'None',
        })),
      })
    }
  }
}

/**
 * A real dropped connection: the request goes to this proxy instead of
 * DynamoDB Local, and the proxy closes the socket either at once (`before`) or
 * after DynamoDB Local answered (`after`: the write committed, the answer is lost).
 */
class DropProxy {
  private constructor(
    private readonly server: Server,
    private readonly port: number,
  ) {}

  static async start(): Promise<DropProxy> {
    const server = createServer((incoming, _response) => {
      const when = incoming.headers['x-fault-drop']
      const target = new URL(String(incoming.headers['x-fault-target']))
      if (when === 'before') {
        incoming.socket.destroy()
        return
      }
      const body: Buffer[] = []
      incoming.on('data', (chunk: Buffer) => body.push(chunk))
      incoming.on('end', () => {
        const headers = { ...incoming.headers }
        delete headers['x-fault-drop']
        delete headers['x-fault-target']
        const upstream = httpRequest(
          {
            host: target.hostname,
            port: target.port,
            method: incoming.method,
            path: incoming.url,
            headers,
          },
          (answer) => {
            answer.resume()
            answer.on('end', () => incoming.socket.destroy())
          },
        )
        upstream.on('error', () => incoming.socket.destroy())
        upstream.end(Buffer.concat(body))
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return new DropProxy(server, (server.address() as AddressInfo).port)
  }

  /** A copy of the SDK's HttpRequest aimed at this proxy (the retry keeps the original). */
  route(request: unknown, when: 'before' | 'after'): unknown {
    const original = request as {
      protocol: string
      hostname: string
      port?: number
      headers: Record<string, string>
    }
    const target = `${original.protocol}//${original.hostname}:${original.port ?? 80}`
    return Object.assign(Object.create(Object.getPrototypeOf(original)), original, {
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: this.port,
      headers: { ...original.headers, 'x-fault-drop': when, 'x-fault-target': target },
    })
  }

  close(): Promise<void> {
    this.server.closeAllConnections()
    return new Promise((resolve) => this.server.close(() => resolve()))
  }
}

// ---------------------------------------------------------------------------
// KMS
// ---------------------------------------------------------------------------

export type KmsFault = 'ThrottlingException' | 'KMSInternalException' | 'DisabledException'

export const KMS_FAULTS: readonly KmsFault[] = [
  'ThrottlingException',
  'KMSInternalException',
  'DisabledException',
]

/** What the KMS client surfaces once its own retries are spent. */
export function kmsFault(fault: KmsFault): Error {
  if (fault === 'ThrottlingException') return throttling()
  if (fault === 'KMSInternalException') return kmsError(KMSInternalException, 'injected fault')
  return kmsError(DisabledException, 'injected fault: key is disabled')
}

/** A TCP endpoint that accepts connections and never answers. */
export async function blackHole(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>()
  const server = createTcpServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      for (const socket of sockets) socket.destroy()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}

/**
 * Every KMSClient built from now on (the runtime's, with its own SDK options)
 * answers through the fake KMS, except that while `slow()` is true, `Sign`
 * goes through the real SDK stack (retries, timeouts, HTTP) to wherever
 * `AWS_ENDPOINT_URL_KMS` points; `errors` records how those calls failed.
 * Construct the FakeKms before calling this.
 */
export function signThroughRealSdk(
  fake: FakeKms,
  slow: () => boolean,
): { restore(): void; errors: string[] } {
  const realSend = KMSClient.prototype.send as (
    this: KMSClient,
    command: unknown,
  ) => Promise<unknown>
  const errors: string[] = []
  const mock = mockClient(KMSClient)
  mock
    .on(GetPublicKeyCommand)
    .callsFake((input: GetPublicKeyCommandInput) =>
      fake.client.send(new GetPublicKeyCommand(input)),
    )
  mock
    .on(GenerateDataKeyCommand)
    .callsFake((input: GenerateDataKeyCommandInput) =>
      fake.client.send(new GenerateDataKeyCommand(input)),
    )
  mock
    .on(DecryptCommand)
    .callsFake((input: DecryptCommandInput) => fake.client.send(new DecryptCommand(input)))
  mock.on(SignCommand).callsFake((input: SignCommandInput, getClient: () => KMSClient) => {
    if (!slow()) return fake.client.send(new SignCommand(input))
    return realSend.call(getClient(), new SignCommand(input)).catch((error: Error) => {
      errors.push(error.name)
      throw error
    })
  })
  return { restore: () => mock.restore(), errors }
}
