import { randomBytes } from 'node:crypto'
import { createSocket, type Socket } from 'node:dgram'

/**
 * X-Ray subsegments for every call of an AWS SDK client, so that a trace shows the
 * DynamoDB, KMS and EventBridge time inside a function's.
 *
 * Lambda's active tracing records the invocation and samples it (the first request each
 * second and 5% of the rest; Lambda honours no X-Ray sampling rule). For a sampled
 * invocation, each SDK call sends one subsegment to the X-Ray daemon Lambda runs beside
 * the function: a UDP datagram in the daemon's segment-document format, parented to the
 * invocation's segment by the trace header (`_X_AMZN_TRACE_ID`), as the X-Ray SDK does
 * from a facade segment. This is the part of the X-Ray SDK the functions use; the SDK
 * itself (aws-xray-sdk-core through Powertools Tracer) added about 128 KiB and 15 to 20 ms
 * to each cold start (docs/benchmarks.md).
 *
 * `POWERTOOLS_TRACE_ENABLED=false` (the config's `tracing: false`) turns it off; outside
 * Lambda (no daemon address or no trace header) it does nothing. The authorizers do not
 * use it. A datagram that cannot be sent is dropped: tracing never fails a call.
 */

/** The SDK's middleware stack, as much of it as tracing needs. */
interface MiddlewareClient {
  readonly middlewareStack: {
    add(
      middleware: (
        next: (args: unknown) => Promise<{ output: unknown }>,
        context: { clientName?: string; commandName?: string },
      ) => (args: { input?: unknown }) => Promise<{ output: unknown }>,
      options: { step: 'initialize'; name: string; override?: boolean },
    ): void
  }
}

/** The trace header's parts, or undefined when the invocation is not sampled. */
export function sampledTrace(
  header: string | undefined,
): { traceId: string; parentId: string } | undefined {
  if (!header) return undefined
  const parts = new Map(
    header.split(';').map((part) => {
      const [key = '', value = ''] = part.split('=')
      return [key.trim(), value.trim()] as const
    }),
  )
  const traceId = parts.get('Root')
  const parentId = parts.get('Parent')
  if (parts.get('Sampled') !== '1' || !traceId || !parentId) return undefined
  return { traceId, parentId }
}

/** What a finished SDK call puts in its subsegment. */
export interface CallRecord {
  readonly service: string
  readonly operation: string
  readonly startMs: number
  readonly endMs: number
  readonly region?: string | undefined
  readonly tableName?: string | undefined
  readonly requestId?: string | undefined
  readonly attempts?: number | undefined
  readonly httpStatus?: number | undefined
  /** The error's name, when the call failed. */
  readonly errorName?: string | undefined
}

/** The daemon's datagram for one call: its header line, then the subsegment. */
export function subsegmentDatagram(
  trace: { traceId: string; parentId: string },
  call: CallRecord,
  id = randomBytes(8).toString('hex'),
): string {
  const status = call.httpStatus
  const throttled =
    status === 429 || /Throttl|TooManyRequests|LimitExceeded/.test(call.errorName ?? '')
  const failed = call.errorName !== undefined
  const document = {
    name: call.service,
    id,
    start_time: call.startMs / 1000,
    end_time: call.endMs / 1000,
    type: 'subsegment',
    trace_id: trace.traceId,
    parent_id: trace.parentId,
    namespace: 'aws',
    aws: {
      operation: call.operation,
      ...(call.region !== undefined && { region: call.region }),
      ...(call.tableName !== undefined && { table_name: call.tableName }),
      ...(call.requestId !== undefined && { request_id: call.requestId }),
      ...(call.attempts !== undefined && { retries: Math.max(0, call.attempts - 1) }),
    },
    ...(status !== undefined && { http: { response: { status } } }),
    // X-Ray's classes: a 4xx is an error (429 a throttle too); a 5xx or no answer, a fault.
    ...(failed && (status === undefined || status >= 500) && { fault: true }),
    ...(failed && status !== undefined && status >= 400 && status < 500 && { error: true }),
    ...(throttled && { throttle: true }),
    ...(call.errorName !== undefined && {
      cause: { exceptions: [{ id, type: call.errorName, remote: status !== undefined }] },
    }),
  }
  return `{"format":"json","version":1}\n${JSON.stringify(document)}`
}

let socket: Socket | undefined

function send(datagram: string): void {
  const [host, port] = (process.env.AWS_XRAY_DAEMON_ADDRESS ?? '').split(':')
  if (!host || !port) return
  if (!socket) {
    socket = createSocket('udp4')
    socket.on('error', () => {})
    // The socket must not keep a process (local mode, a test) alive.
    socket.unref()
  }
  socket.send(datagram, Number(port), host, () => {})
}

/** `client`, its calls traced (a no-op where tracing is off, or outside Lambda). */
export function traced<T>(client: T): T {
  if (process.env.POWERTOOLS_TRACE_ENABLED === 'false') return client
  ;(client as unknown as MiddlewareClient).middlewareStack.add(
    (next, context) => async (args) => {
      const trace = sampledTrace(process.env._X_AMZN_TRACE_ID)
      if (!trace || !process.env.AWS_XRAY_DAEMON_ADDRESS) return next(args)
      const input = (args.input ?? {}) as { TableName?: unknown }
      const base = {
        service: (context.clientName ?? 'AWS').replace(/(Document)?Client$/, ''),
        operation: (context.commandName ?? 'Call').replace(/Command$/, ''),
        startMs: Date.now(),
        region: process.env.AWS_REGION,
        tableName: typeof input.TableName === 'string' ? input.TableName : undefined,
      }
      // The SDK's metadata of the call, on its output or on the error it threw.
      type Metadata = { httpStatusCode?: number; requestId?: string; attempts?: number }
      const finish = ($metadata: Metadata | undefined, errorName?: string) =>
        send(
          subsegmentDatagram(trace, {
            ...base,
            endMs: Date.now(),
            httpStatus: $metadata?.httpStatusCode,
            requestId: $metadata?.requestId,
            attempts: $metadata?.attempts,
            ...(errorName !== undefined && { errorName }),
          }),
        )
      try {
        const result = await next(args)
        finish((result.output as { $metadata?: Metadata }).$metadata)
        return result
      } catch (error) {
        const { name, $metadata } = error as { name?: string; $metadata?: Metadata }
        finish($metadata, name ?? 'Error')
        throw error
      }
    },
    { step: 'initialize', name: 'xraySubsegment', override: true },
  )
  return client
}
