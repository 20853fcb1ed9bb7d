/**
 * The two regional stacks as synthesized (docs/multi-region.md "Simulation"): the app
 * with `regions` synthesized once (test/stack/assembly.ts `synthesizeRegions`), each
 * region's stack deployed into a `Cloud` of its own in front of a DynamoDB Local of its
 * own (the run's two, test/global-setup.ts: the primary's and the other's), the clouds
 * linked as regions of one account (the global table's replica in each, the replica key
 * sharing the primary key's material, the cross-region reference resolved, Lambda's
 * Invoke routed to the other region's sandboxes with IAM), MREC's replication between
 * the two DynamoDB Locals (test/support/regions.ts `Replicator`, on the harness clock),
 * and a front that sends each request to either region and can take one down.
 *
 * Each region goes down and up on its own, the replicator holds and releases, the clock
 * moves for both regions: what `failover: 'adopt'` needs (test/stack/multi-region-adopt.test.ts).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { inject } from 'vitest'
import { DynamoSessions } from '../../functions/adapters/dynamodb/sessions.js'
import type { Session } from '../../functions/core/ports.js'
import { parseRefreshToken } from '../../functions/core/refresh-token.js'
import type { LedgerFacts } from '../../lib/app-stacks.js'
import { type Region, Replicator } from '../support/regions.js'
import { client, seedUser } from './api.js'
import { type Assembly, synthesizeRegions } from './assembly.js'
import { Cloud } from './cloud.js'
import { Deployment } from './deployment.js'

export const PRIMARY: Region = 'eu-west-1'
export const SECONDARY: Region = 'us-east-1'
const REGIONS = [PRIMARY, SECONDARY] as const
export const ISSUER = 'https://auth.example.com'

export interface StackRegionsOptions {
  /** The CloudFormation stack name: it names the global table in both DynamoDB Locals, so each file has its own. */
  readonly stackName: string
  /** `-c` overrides on top of the committed config, `regions` and `issuer`. */
  readonly context?: Record<string, string>
  /**
   * What the key ledger tells the stacks, as bin/app.ts passes it (`signing: 'envelope'`:
   * each key's mode and that it is multi-Region). Unset: as with `signingKeysLock: 'off'`.
   */
  readonly ledger?: LedgerFacts
  /** MREC's delay, on the harness clock. @default 50 ms */
  readonly replicationDelayMs?: number
}

export interface StackRegions {
  readonly assembly: Assembly<string>
  readonly cloud: Readonly<Record<Region, Cloud>>
  readonly deployment: Readonly<Record<Region, Deployment>>
  readonly replicator: Replicator
  readonly replicationDelayMs: number
  /** A client of each region's DynamoDB Local, outside IAM (the operator's, the replicator's). */
  readonly dynamodb: Readonly<Record<Region, DynamoDBClient>>
  /** The front: a client of the region's API. A region that is down takes no request. */
  front(region: Region): ReturnType<typeof client>
  /**
   * Takes a region down: the front sends it nothing, and no Invoke reaches it (`drop`:
   * the connection closes at once; `hang`: no answer, the caller's time budget ends it).
   */
  down(region: Region, how?: 'drop' | 'hang'): void
  up(region: Region): void
  /** The harness clock (epoch ms): what both regions' sandboxes and the replicator see. */
  now(): number
  /** Moves both regions' clocks (and so the replicator's) `ms` ahead. */
  advanceClock(ms: number): void
  /** A user written in the primary as `npm run users` would, replicated to the other. */
  seedUser(): Promise<string>
  /** A session as a region's replica holds it now (strongly consistent read). */
  sessionIn(region: Region, refreshToken: string): Promise<Session | undefined>
  /** Every region's denied AWS calls, `region function action resource`. */
  denials(): string[]
  close(): Promise<void>
}

/** Deploys the two regional stacks of the app and starts replication between them. */
export async function startStackRegions(options: StackRegionsOptions): Promise<StackRegions> {
  const delayMs = options.replicationDelayMs ?? 50
  const assembly = synthesizeRegions(
    {
      ...options.context,
      stackName: options.stackName,
      regions: JSON.stringify(REGIONS),
      issuer: ISSUER,
    },
    options.ledger,
  )
  if (assembly.regions.join() !== REGIONS.join()) {
    throw new Error(`the app synthesized ${assembly.regions.join(', ')}`)
  }
  const clouds: Cloud[] = []
  const deployments: Deployment[] = []
  try {
    const endpoint: Record<Region, string> = {
      [PRIMARY]: inject('dynamoEndpoint'),
      [SECONDARY]: inject('dynamoEndpointSecondRegion'),
    } as Record<Region, string>
    const cloud = {} as Record<Region, Cloud>
    for (const region of REGIONS) {
      cloud[region] = new Cloud(endpoint[region], { region })
      clouds.push(cloud[region])
    }
    Cloud.link(...clouds)
    await Promise.all(clouds.map((c) => c.start()))
    // The primary first: the other stack depends on it (the table, the keys, the reference).
    const deployment = {} as Record<Region, Deployment>
    for (const region of REGIONS) {
      const template = assembly.templates[region]
      if (!template) throw new Error(`no stack for ${region}`)
      // The one issuer's hostname: each region's functions reach their own region's API.
      deployment[region] = await Deployment.start(cloud[region], {
        functions: template,
        hostnames: [new URL(ISSUER).host],
      })
      deployments.push(deployment[region])
    }
    const dynamodb = {} as Record<Region, DynamoDBClient>
    for (const region of REGIONS) {
      dynamodb[region] = new DynamoDBClient({
        endpoint: endpoint[region],
        region,
        credentials: { accessKeyId: 'replication', secretAccessKey: 'replication' },
      })
    }
    const tables = REGIONS.map((region) => ({
      region,
      client: dynamodb[region],
      tableName: deployment[region].tableName,
      endpoint: endpoint[region],
    }))
    const now = () => deployment[PRIMARY].now()
    const replicator = new Replicator(tables as never, delayMs, undefined, { now })
    replicator.start()
    const downed = new Set<Region>()
    const sessions = Object.fromEntries(
      REGIONS.map((region) => [
        region,
        new DynamoSessions(dynamodb[region], deployment[region].tableName),
      ]),
    ) as Record<Region, DynamoSessions>
    return {
      assembly,
      cloud,
      deployment,
      replicator,
      replicationDelayMs: delayMs,
      dynamodb,
      front(region) {
        if (downed.has(region)) throw new Error(`the front sends nothing to ${region}: it is down`)
        return client(deployment[region])
      },
      down(region, how = 'drop') {
        downed.add(region)
        cloud[region].down = how
      },
      up(region) {
        downed.delete(region)
        cloud[region].down = false
      },
      now,
      advanceClock(ms) {
        for (const region of REGIONS) deployment[region].advanceClock(ms)
      },
      async seedUser() {
        const username = await seedUser(deployment[PRIMARY], endpoint[PRIMARY])
        await replicator.drain()
        return username
      },
      sessionIn(region, refreshToken) {
        const sid = parseRefreshToken(refreshToken)?.sid
        if (sid === undefined) throw new Error('not a refresh token')
        return sessions[region].getSession(sid)
      },
      denials: () =>
        REGIONS.flatMap((region) =>
          deployment[region].denials().map((denial) => `${region} ${denial}`),
        ),
      async close() {
        await replicator.stop()
        for (const region of REGIONS) dynamodb[region].destroy()
        await Promise.all(deployments.map((d) => d.stop()))
        await Promise.all(clouds.map((c) => c.stop()))
        assembly.remove()
      },
    }
  } catch (error) {
    await Promise.all(deployments.map((d) => d.stop()))
    await Promise.all(clouds.map((c) => c.stop()))
    assembly.remove()
    throw error
  }
}
