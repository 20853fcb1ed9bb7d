/**
 * Two regions on the one DynamoDB Local of the test run (docs/multi-region.md
 * "Simulation"): a table per region, a replicator that applies each stream
 * record of one table to the other after a delay, last writer wins (as MREC),
 * each region's functions wired on its own table with the regions' settings,
 * the token functions reachable from each other through the real forwarding
 * adapter (functions/adapters/home-region.ts) on a local Lambda Invoke
 * endpoint, and a front that sends each request to either region and can
 * take one down.
 */
import { createServer, type Server } from 'node:http'
import {
  DeleteItemCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb'
import {
  type _Record,
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from '@aws-sdk/client-dynamodb-streams'
import { lambdaHomeRegion } from '../../functions/adapters/home-region.js'
import type { ClientConfig } from '../../functions/core/clients.js'
import { noTelemetry, type Signer } from '../../functions/core/ports.js'
import type { HomeAnswer, HomeRegion } from '../../functions/core/regions.js'
import { consumeForks, type ForkStreamRecord } from '../../functions/forks/consume.js'
import { FORK_FILTER_PATTERNS } from '../../lib/fork-detection.js'
import { freePort } from '../../local/dynamodb-local.js'
import { lambdaContext, listen } from '../../local/server.js'
import { matchesFilter } from '../stack/deployment.js'
import { FakeClock } from './clock.js'
import { createTestTable } from './dynamo.js'
import { type Harness, startHarness } from './harness.js'

export const REGIONS = ['eu-west-1', 'us-east-1'] as const
export type Region = (typeof REGIONS)[number]

/** A region's replica of the table: a client on its DynamoDB Local, and its name there. */
export interface ReplicaTable {
  readonly region: Region
  readonly client: DynamoDBClient
  readonly tableName: string
  /** The DynamoDB Local it lives in (its stream is read there). @default the replicator's endpoint */
  readonly endpoint?: string
}
export type Table = ReplicaTable

export interface ReplicatorOptions {
  /**
   * The clock a write's delay runs on (ms), and its "last writer" time.
   * @default performance.now: real time
   */
  readonly now?: () => number
}

/** One record applied to the other region: when it was seen and applied (replicator clock, ms). */
export interface AppliedRecord {
  readonly from: Region
  readonly to: Region
  /** The item's key, canonical JSON of its DynamoDB key. */
  readonly key: string
  readonly seenAt: number
  readonly appliedAt: number
}

/** A canonical JSON of a value (sorted keys), to compare images. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}

/**
 * MREC in miniature: each local write of one table reaches the other `delayMs` after the
 * replicator saw it; a write the other region made to the same item after it was seen
 * wins (last writer wins), and a replicated write is never replicated back.
 */
export class Replicator {
  /** A streams client per DynamoDB Local. */
  private readonly streams = new Map<string, DynamoDBStreamsClient>()
  private readonly now: () => number
  private readonly iterators = new Map<string, string | null>()
  private readonly echoes = new Map<Region, string[]>()
  /** When each table last saw a local write of each item. */
  private readonly localWrite = new Map<string, number>()
  private readonly applying = new Set<Promise<void>>()
  private readonly queues = new Map<Region, Promise<void>>()
  private polling: Promise<void> = Promise.resolve()
  private timer: NodeJS.Timeout | undefined
  private held = false
  private readonly heldRecords: (() => void)[] = []
  /** Records applied to the other table. */
  applied = 0
  /** Each region's stream consumer (the fork consumer behind its mapping's filters). */
  readonly consumers = new Map<Region, (record: _Record) => Promise<void>>()
  /** Each record applied, in order (for measuring the lag). */
  readonly log: AppliedRecord[] = []

  constructor(
    private readonly tables: readonly [Table, Table],
    private readonly delayMs: number,
    private readonly endpoint = process.env.DYNAMODB_ENDPOINT,
    options: ReplicatorOptions = {},
  ) {
    this.now = options.now ?? (() => performance.now())
  }

  private streamsOf(table: Table): DynamoDBStreamsClient {
    const endpoint = table.endpoint ?? this.endpoint
    if (!endpoint) throw new Error('the replicator has no DynamoDB Local endpoint')
    let client = this.streams.get(endpoint)
    if (!client) {
      client = new DynamoDBStreamsClient({
        endpoint,
        region: 'local',
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      })
      this.streams.set(endpoint, client)
    }
    return client
  }

  /**
   * Polls both streams every 25 ms, a tick only when no poll is queued: on a loaded machine
   * a poll can take longer than a tick, and queued ticks would make every wait for a fresh
   * poll (an apply's, a drain's) wait for all of them.
   */
  start(): void {
    this.timer = setInterval(() => {
      if (this.queued === 0) void this.poll().catch(() => undefined)
    }, 25)
  }

  /** Replication lag without end: writes are seen but not applied until `release`. */
  hold(): void {
    this.held = true
  }

  release(): void {
    this.held = false
    for (const apply of this.heldRecords.splice(0)) apply()
  }

  /**
   * Every write made so far, applied (or dropped by last writer wins) in the other table:
   * polls until three polls in a row find no record (DynamoDB Local may show a record in
   * its stream a little after the write), each after the applies it started.
   */
  async drain(): Promise<void> {
    let quiet = 0
    while (quiet < 3) {
      const seen = await this.poll(true)
      while (this.applying.size > 0) await Promise.all([...this.applying])
      quiet = seen === 0 ? quiet + 1 : 0
      if (quiet < 3) await new Promise((resolve) => setTimeout(resolve, 15))
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    await this.polling.catch(() => undefined)
    for (const client of this.streams.values()) client.destroy()
  }

  /** Reads both streams once; resolves to how many records it found. */
  poll(fresh = false): Promise<number> {
    this.queued++
    const next = this.polling
      .catch(() => undefined)
      .then(() => this.pollOnce(fresh))
      .finally(() => this.queued--)
    this.polling = next.then(() => undefined)
    return next
  }

  /** Polls asked for and not finished. */
  private queued = 0
  /** When the last write was seen (the replicator's clock). */
  private lastSeenAt = Number.NEGATIVE_INFINITY

  private async pollOnce(fresh: boolean): Promise<number> {
    let count = 0
    for (const [index, table] of this.tables.entries()) {
      const other = this.tables[1 - index] as Table
      for (const record of await this.readTable(table, fresh)) {
        this.seen(record, table, other)
        count++
      }
    }
    return count
  }

  /** Shards a record was read from. */
  private readonly started = new Set<string>()

  private getRecords(table: Table, iterator: string) {
    return this.streamsOf(table).send(new GetRecordsCommand({ ShardIterator: iterator }))
  }

  /** Each table's stream and its shards, described again at most every 500 ms (or on drain). */
  private readonly described = new Map<
    string,
    { streamArn: string; shards: string[]; at: number }
  >()

  private async shardsOf(table: Table, fresh: boolean) {
    // By region: the two replicas may have one name (and stream ARN) on two DynamoDB Locals.
    const known = this.described.get(table.region)
    if (known && !fresh && performance.now() - known.at < 500) return known
    const streamArn =
      known?.streamArn ??
      ((await table.client.send(new DescribeTableCommand({ TableName: table.tableName }))).Table
        ?.LatestStreamArn as string)
    const { StreamDescription } = await this.streamsOf(table).send(
      new DescribeStreamCommand({ StreamArn: streamArn }),
    )
    const shards = (StreamDescription?.Shards ?? []).map((shard) => shard.ShardId as string)
    const described = { streamArn, shards, at: performance.now() }
    this.described.set(table.region, described)
    return described
  }

  private async readTable(table: Table, fresh: boolean): Promise<_Record[]> {
    const { streamArn, shards } = await this.shardsOf(table, fresh)
    const records: _Record[] = []
    for (const shardId of shards) {
      const shard = { ShardId: shardId }
      const id = `${table.region}|${streamArn}/${shard.ShardId}`
      if (!this.iterators.has(id)) {
        const { ShardIterator } = await this.streamsOf(table).send(
          new GetShardIteratorCommand({
            StreamArn: streamArn,
            ShardId: shard.ShardId,
            ShardIteratorType: 'TRIM_HORIZON',
          }),
        )
        this.iterators.set(id, ShardIterator ?? null)
      }
      let iterator = this.iterators.get(id)
      while (iterator) {
        let page: Awaited<ReturnType<typeof this.getRecords>>
        try {
          page = await this.getRecords(table, iterator)
        } catch (error) {
          // DynamoDB Local refuses a TRIM_HORIZON iterator of a shard with no record yet:
          // take a new one on the next poll.
          if ((error as Error).name !== 'TrimmedDataAccessException') throw error
          if (!this.started.has(id)) this.iterators.delete(id)
          break
        }
        if ((page.Records ?? []).length) this.started.add(id)
        records.push(...(page.Records ?? []))
        iterator = page.NextShardIterator ?? null
        this.iterators.set(id, iterator)
        if ((page.Records ?? []).length === 0) break
      }
    }
    return records
  }

  private seen(record: _Record, from: Table, to: Table): void {
    const change = record.dynamodb
    if (!change?.Keys) return
    // Every record of the region's stream, replicated writes included, as Lambda's poller
    // hands them to the region's consumer; the drain waits for it.
    const consumer = this.consumers.get(from.region)
    if (consumer) {
      const consumed = consumer(record)
      this.applying.add(consumed)
      void consumed.finally(() => this.applying.delete(consumed)).catch(() => undefined)
    }
    const image = record.eventName === 'REMOVE' ? { REMOVE: change.Keys } : change.NewImage
    const signature = canonical(image)
    const echoes = this.echoes.get(from.region) ?? []
    const echo = echoes.indexOf(signature)
    if (echo >= 0) {
      // A write this replicator made: MREC never replicates it back.
      echoes.splice(echo, 1)
      return
    }
    const item = canonical(change.Keys)
    // Strictly after every write seen before, also on a clock that stands still (a test's):
    // two writes of one item always have a last writer.
    const seenAt = this.now()
    const at = Math.max(seenAt, this.lastSeenAt + 0.001)
    this.lastSeenAt = at
    this.localWrite.set(`${from.region}|${item}`, at)
    const apply = () => {
      // In stream order per destination, as a replica applies an item's changes.
      const due = seenAt + this.delayMs
      const previous = this.queues.get(to.region) ?? Promise.resolve()
      const done = previous.then(async () => {
        // Re-read the clock after each wait: a test may move it ahead meanwhile.
        for (let wait = due - this.now(); wait > 0; wait = due - this.now()) {
          await new Promise((resolve) => setTimeout(resolve, Math.min(wait, 25)))
        }
        // Last writer wins: the other region wrote this item after this write was seen. Read
        // its stream first: a write it made that no poll has seen yet is a later write too
        // (applying over it would leave the two replicas different for good).
        await this.poll()
        if ((this.localWrite.get(`${to.region}|${item}`) ?? -1) > at) return
        const pending = this.echoes.get(to.region) ?? []
        pending.push(signature)
        this.echoes.set(to.region, pending)
        if (record.eventName === 'REMOVE') {
          await to.client.send(
            new DeleteItemCommand({ TableName: to.tableName, Key: change.Keys as never }),
          )
        } else {
          await to.client.send(
            new PutItemCommand({ TableName: to.tableName, Item: change.NewImage as never }),
          )
        }
        this.applied++
        this.log.push({
          from: from.region,
          to: to.region,
          key: item,
          seenAt,
          appliedAt: this.now(),
        })
      })
      this.queues.set(
        to.region,
        done.catch(() => undefined),
      )
      this.applying.add(done)
      void done.finally(() => this.applying.delete(done)).catch(() => undefined)
    }
    if (this.held) this.heldRecords.push(apply)
    else apply()
  }
}

export interface TwoRegions {
  readonly clock: FakeClock
  readonly region: Readonly<Record<Region, Harness>>
  readonly replicator: Replicator
  /** Region names, the primary first. */
  readonly regions: typeof REGIONS
  /** The front: the region a request is sent to (a region that is down takes none). */
  front(region: Region): Harness
  /** Takes a region down: the front sends it nothing, and no forward reaches it. */
  down(region: Region): void
  up(region: Region): void
  isDown(region: Region): boolean
  /** Forwards made so far, from each region. */
  readonly forwards: Record<Region, number>
  /**
   * The fork consumer of `region` runs what another region's consumer hands it, but its
   * answer is lost (`false`: answered again).
   */
  loseForkAnswers(region: Region, lose: boolean): void
  /** Records the fork consumer was invoked with (its mapping's filters passed), per region. */
  readonly forkInvocations: Record<Region, number>
  close(): Promise<void>
}

export interface TwoRegionOptions {
  clients?: ClientConfig[]
  /** Replication delay. @default 50 ms */
  replicationDelayMs?: number
  /** `FAILOVER`. @default relogin */
  failover?: string
  /** Each region's signer, built on the regions' tables. @default the worker's local key */
  signer?: (region: Region, tables: Readonly<Record<Region, Table>>) => Signer
}

/** Two regions of one service, behind one issuer, with replication between their tables. */
export async function startTwoRegions(options: TwoRegionOptions = {}): Promise<TwoRegions> {
  const clock = new FakeClock()
  const issuer = `http://127.0.0.1:${await freePort()}`
  const tables = await Promise.all(
    // Both images, as a global table's replicas stream them (fork detection reads both).
    REGIONS.map(async (region) => ({
      region,
      ...(await createTestTable({ streamViewType: 'NEW_AND_OLD_IMAGES' })),
    })),
  )
  const replicator = new Replicator(
    tables as unknown as [Table, Table],
    options.replicationDelayMs ?? 50,
  )
  const downed = new Set<Region>()
  const lostAnswers = new Set<Region>()
  const forwards: Record<Region, number> = { 'eu-west-1': 0, 'us-east-1': 0 }
  const harnesses = {} as Record<Region, Harness>
  const forkConsumers = {} as Record<
    Region,
    (event: Parameters<typeof consumeForks>[1]) => Promise<unknown>
  >
  /** Fork consumer invocations (after the mapping's filters), per region. */
  const forkInvocations: Record<Region, number> = { 'eu-west-1': 0, 'us-east-1': 0 }
  // Each region's Lambda Invoke endpoint: its token and revoke functions, as Lambda runs them.
  const lambdaEndpoints: Server[] = []
  const endpointOf = {} as Record<Region, string>
  for (const region of REGIONS) {
    const server = createServer((req, res) => {
      if (downed.has(region)) {
        req.socket.destroy()
        return
      }
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', async () => {
        const event = JSON.parse(Buffer.concat(chunks).toString('utf8'))
        // POST /2015-03-31/functions/<name>/invocations
        const name = decodeURIComponent(req.url?.split('/')[3] ?? '')
        if (name === 'TokenService-forks') {
          const result = await forkConsumers[region](event)
          // Done, but the caller never hears it (as after a timeout): the socket goes.
          if (lostAnswers.has(region)) {
            req.socket.destroy()
            return
          }
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(JSON.stringify(result))
          return
        }
        const fn = (['token', 'revoke', 'sessions'] as const).find(
          (f) => name === `TokenService-${f}`,
        )
        if (!fn) {
          res.writeHead(404, { 'x-amzn-errortype': 'ResourceNotFoundException' })
          res.end(JSON.stringify({ message: `no function ${name}` }))
          return
        }
        const result = await harnesses[region].service.handlers[fn](
          event,
          lambdaContext(fn, 30_000),
        )
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify(result))
      })
    })
    const port = await freePort()
    await listen(server, port)
    lambdaEndpoints.push(server)
    endpointOf[region] = `http://127.0.0.1:${port}`
  }
  for (const [index, region] of REGIONS.entries()) {
    const table = tables[index] as Table
    const way = (fn: 'token' | 'revoke' | 'sessions' | 'forks'): HomeRegion => {
      const adapter = lambdaHomeRegion(
        region,
        { functionName: `TokenService-${fn}`, timeoutMs: 2000 },
        { endpoint: (home) => endpointOf[home as Region] },
      )
      return {
        async forward(home, event): Promise<HomeAnswer | 'unreachable'> {
          forwards[region]++
          return adapter.forward(home, event)
        },
      }
    }
    harnesses[region] = await startHarness({
      clock,
      issuer,
      table,
      homeRegions: { token: way('token'), revoke: way('revoke'), sessions: way('sessions') },
      ...(options.clients && { clients: options.clients }),
      ...(options.signer && {
        signer: options.signer(
          region,
          Object.fromEntries(tables.map((t) => [t.region, t])) as unknown as Record<Region, Table>,
        ),
      }),
      env: {
        REGIONS: REGIONS.join(','),
        HOME_REGION: region,
        ...(options.failover && { FAILOVER: options.failover }),
      },
    })
    // The fork consumer, wired as functions/forks/handler.ts wires it, on this region's table.
    const harness = harnesses[region]
    const forkDeps = {
      sessions: harness.sessions,
      clock,
      telemetry: noTelemetry,
      regions: { here: region, all: [...REGIONS], failover: 'adopt' as const },
      homeRegion: way('forks'),
    }
    forkConsumers[region] = (event) => consumeForks(forkDeps, event)
    replicator.consumers.set(region, async (record) => {
      if (!FORK_FILTER_PATTERNS.some((pattern) => matchesFilter(pattern, record))) return
      forkInvocations[region]++
      const response = await consumeForks(forkDeps, { Records: [record as ForkStreamRecord] })
      if ('batchItemFailures' in response && response.batchItemFailures.length > 0) {
        throw new Error(`the fork consumer of ${region} failed a record`)
      }
    })
  }
  replicator.start()
  return {
    clock,
    region: harnesses,
    replicator,
    regions: REGIONS,
    forwards,
    forkInvocations,
    loseForkAnswers: (region, lose) =>
      lose ? lostAnswers.add(region) : lostAnswers.delete(region),
    front(region) {
      if (downed.has(region)) throw new Error(`the front sends nothing to ${region}: it is down`)
      return harnesses[region]
    },
    down: (region) => downed.add(region),
    up: (region) => downed.delete(region),
    isDown: (region) => downed.has(region),
    async close() {
      await replicator.stop()
      for (const server of lambdaEndpoints) {
        server.closeAllConnections()
        server.close()
      }
      await Promise.all(REGIONS.map((region) => harnesses[region].close()))
    },
  }
}
