/**
 * The capacity and cost model (`npm run capacity`, docs/capacity.md): a user
 * profile and the committed config, turned into the busy hours' load against
 * every quota that bounds token issuance, and a monthly cost by line. What one
 * call costs in DynamoDB units and KMS requests is the stack suite's own
 * measurement (per-call.ts, kept equal to it by test/stack/capacity.test.ts);
 * prices and quotas are dated, with sources (prices.ts); everything else the
 * model assumes is in `ASSUMPTIONS`, each with why.
 */
import { HTTP_FUNCTIONS } from '../../functions/routes.js'
import type { CallCost, PerCall } from './per-call.js'
import { PRICES, type Price, QUOTAS, type RegionPrices } from './prices.js'

/** Who uses the service, and how. */
export interface Profile {
  /** Monthly active users. */
  readonly mau: number
  /** Logins per user and day. */
  readonly loginsPerDay: number
  /** Refreshes per user and day (every 15 minutes for 8 hours: 32). */
  readonly refreshesPerDay: number
  /** The hours of the day in which the day's traffic falls, evenly. */
  readonly busyHours: number
  readonly region: string
  /**
   * With several regions: the share of refreshes that reach a region other than their
   * session's home and are forwarded there (docs/multi-region.md).
   * @default ASSUMPTIONS.offHomeShare
   */
  readonly offHomeShare?: number
}

/** The profile of issue 17's example. */
export const EXAMPLE_PROFILE: Profile = {
  mau: 1_000_000,
  loginsPerDay: 1,
  refreshesPerDay: 32,
  busyHours: 8,
  region: 'us-east-1',
}

/** What the model reads from the deploy configuration. */
export interface Deployed {
  /** How the active key signs. */
  readonly signing: 'kms' | 'envelope'
  readonly algorithm: 'RS256' | 'ES256'
  /** The stage's throttle (requests a second). */
  readonly stageRate: number
  /** The `/login` route's throttle. */
  readonly loginRate: number
  /** Security events on an EventBridge bus. */
  readonly bus: boolean
  readonly logRetentionDays: number
  /** The longest `refresh_absolute_ttl_seconds` and `refresh_idle_ttl_seconds` of the clients. */
  readonly absoluteTtlDays: number
  readonly idleTtlDays: number
  /** The regions it is deployed in (`regions`), the traffic split evenly. @default 1 */
  readonly regions?: number
}

/**
 * What the model assumes beyond the measurement, the prices and the
 * config. Change one here and docs/capacity.md together.
 */
export const ASSUMPTIONS = {
  daysPerMonth: 30,
  /**
   * A warm call's billed duration (ms): a refresh is three network stages
   * inside the region (about 8 ms each, a KMS `Sign` about 15 ms) plus its CPU
   * (about 10 ms measured, test/stack/capacity.test.ts) at the token function's
   * 512 MB, 0.29 vCPU: about 17 ms more than at 1024 MB; a login is dominated by
   * scrypt (N=2^17, about 0.25 s of CPU measured, budgeted at 0.5 s on 1769 MB).
   */
  warmMs: { refresh: { kms: 52, envelope: 42 }, login: 550 },
  /**
   * CloudWatch Logs bytes per request: Lambda's START, END and REPORT lines;
   * the one EMF metrics line a success writes (no log line: successes are
   * sampled); the API's access-log line.
   */
  logBytesPerRequest: { platform: 340, metrics: 260, accessLog: 420 },
  /** X-Ray's default sampling rule at volume: one request a second, then 5 %. */
  traceSampling: 0.05,
  /** Containers live about an hour: each start fetches a grace data key and, with envelope keys, unwraps one. */
  containerHours: 1,
  /**
   * Bytes stored per item, DynamoDB's 100-byte overhead included: a session
   * with its pointer; a retired token's record (kept until its session's
   * absolute expiry); an outbox item (7 days).
   */
  itemBytes: { session: 1_150, retiredToken: 230, outboxEvent: 700, user: 500 },
  /**
   * Several regions (docs/multi-region.md). A forwarded refresh waits one round trip
   * between neighbouring regions (eu-west-1 and us-east-1: about 70-80 ms) plus the home's
   * own refresh, which is already counted there; about 10 ms of its own work.
   */
  forwardMs: { roundTrip: 80, own: 10 },
  /**
   * Refreshes that reach a region other than their session's home under latency routing:
   * clients whose nearest region changes (travel, a shift in Route 53's latency data).
   * Round-robin routing would make it (N-1)/N; a lost region, all its sessions'.
   */
  offHomeShare: 0.05,
  /**
   * Bytes each call sends to every other replica: a refresh rewrites the session item; a
   * login writes the session, its pointer in the user item and an outbox item. A forwarded
   * refresh sends its request and its answer, about 2 KB.
   */
  replicatedBytes: { refresh: 1_150, login: 2_350, forwarded: 2_000 },
} as const

/** One quota and the busy hours' load on it. */
export interface LoadLine {
  readonly name: string
  /** A throttle the config sets (ours to raise), rather than an AWS quota. */
  readonly config: boolean
  /** Per second (a concurrency for Lambda). */
  readonly load: number
  readonly quota: number
  readonly utilization: number
  readonly scope: string
}

export interface CostLine {
  readonly name: string
  readonly usd: number
  /** How it is counted. */
  readonly basis: string
}

export interface CapacityModel {
  readonly profile: Profile
  readonly deployed: Deployed
  readonly perMonth: { readonly logins: number; readonly refreshes: number }
  readonly perSecond: { readonly logins: number; readonly refreshes: number }
  /** Every quota, the one that binds first first. */
  readonly load: readonly LoadLine[]
  /** The monthly active users at which the first quota binds. */
  readonly bindsAtMau: number
  /** The first AWS quota to bind (the config's throttles aside), and at how many users. */
  readonly awsBinding: { readonly name: string; readonly atMau: number }
  readonly cost: readonly CostLine[]
  readonly totalUsd: number
  readonly usdPerMillionRefreshes: number
}

const costOf = (price: Price, units: number, unitsPerPrice: number) =>
  (units / unitsPerPrice) * price.usd

/** The model for a profile, a deployment and what each call costs. */
export function capacityModel(
  profile: Profile,
  deployed: Deployed,
  perCall: PerCall,
  assumptions = ASSUMPTIONS,
): CapacityModel {
  const prices: RegionPrices | undefined = PRICES[profile.region]
  if (!prices) {
    throw new Error(
      `no prices for region ${profile.region}: lib/capacity/prices.ts has ${Object.keys(PRICES).join(', ')}`,
    )
  }
  const { daysPerMonth } = assumptions
  const perDay = {
    logins: profile.mau * profile.loginsPerDay,
    refreshes: profile.mau * profile.refreshesPerDay,
  }
  const perMonth = {
    logins: perDay.logins * daysPerMonth,
    refreshes: perDay.refreshes * daysPerMonth,
  }
  const busySeconds = profile.busyHours * 3600
  const perSecond = {
    logins: perDay.logins / busySeconds,
    refreshes: perDay.refreshes / busySeconds,
  }
  const { refresh, login } = perCall
  const both = (pick: (cost: CallCost) => number, rate: { logins: number; refreshes: number }) =>
    rate.logins * pick(login) + rate.refreshes * pick(refresh)
  const signs = (cost: CallCost) => cost.kms.Sign ?? 0
  const refreshMs = assumptions.warmMs.refresh[deployed.signing]
  // Several regions, the traffic split evenly: the quotas are per account and region, but
  // every replica applies every write; a forwarded refresh is a second request and
  // invocation, in the region it reached (docs/multi-region.md "Capacity").
  const regions = deployed.regions ?? 1
  const offHome = regions > 1 ? (profile.offHomeShare ?? assumptions.offHomeShare) : 0
  const forwardMs = assumptions.forwardMs.roundTrip + assumptions.forwardMs.own
  const forwarded = {
    perSecond: perSecond.refreshes * offHome,
    perMonth: perMonth.refreshes * offHome,
  }
  const requests = (perSecond.logins + perSecond.refreshes + forwarded.perSecond) / regions
  const perRegion = { logins: perSecond.logins / regions, refreshes: perSecond.refreshes / regions }
  const inRegion = regions > 1 ? `, each of ${regions} regions` : ''

  const line = (name: string, load: number, quota: number, scope: string): LoadLine => ({
    name,
    config: scope.includes('(config)'),
    load,
    quota,
    utilization: load / quota,
    scope,
  })
  const load = [
    line(
      'API Gateway, account',
      requests,
      QUOTAS.apiGatewayAccount.perSecond,
      QUOTAS.apiGatewayAccount.scope + inRegion,
    ),
    line(
      'API Gateway, stage throttle',
      requests,
      deployed.stageRate,
      "the stage's `throttle.rateLimit` (config)",
    ),
    line(
      'API Gateway, /login throttle',
      perRegion.logins,
      deployed.loginRate,
      "the `/login` route's `loginThrottle.rateLimit` (config)",
    ),
    line(
      'KMS, asymmetric requests',
      both(signs, perRegion),
      QUOTAS.kmsAsymmetric.perSecond,
      QUOTAS.kmsAsymmetric.scope + inRegion,
    ),
    line(
      'Lambda concurrency',
      (perRegion.refreshes * refreshMs +
        perRegion.logins * assumptions.warmMs.login +
        (forwarded.perSecond / regions) * forwardMs) /
        1000,
      QUOTAS.lambdaConcurrency.perSecond,
      QUOTAS.lambdaConcurrency.scope + inRegion,
    ),
    line(
      'DynamoDB writes, new table',
      // Every replica writes every item: replication does not divide the writes.
      both((c) => c.billedWriteUnits, perSecond),
      QUOTAS.dynamodbNewTableWrites.perSecond,
      QUOTAS.dynamodbNewTableWrites.scope + (regions > 1 ? ', in every replica' : ''),
    ),
    line(
      'DynamoDB reads, new table',
      both((c) => c.readUnits, perRegion),
      QUOTAS.dynamodbNewTableReads.perSecond,
      QUOTAS.dynamodbNewTableReads.scope + inRegion,
    ),
  ].sort((a, b) => b.utilization - a.utilization)
  const binding = load[0] as LoadLine
  const aws = load.find((each) => !each.config) as LoadLine

  // Monthly cost, line by line.
  const calls = perMonth.logins + perMonth.refreshes + forwarded.perMonth
  const api = prices.apiGateway
  const apiUsd =
    costOf(api.first300M, Math.min(calls, 300e6), 1e6) +
    costOf(api.beyond300M, Math.max(0, calls - 300e6), 1e6)
  const gb = (mib: number) => mib / 1024
  const gbSeconds =
    ((perMonth.refreshes * refreshMs + forwarded.perMonth * forwardMs) *
      gb(HTTP_FUNCTIONS.token.memoryMiB) +
      perMonth.logins * assumptions.warmMs.login * gb(HTTP_FUNCTIONS.login.memoryMiB)) /
    1000
  // Replicated write units are priced as write units (on demand, since November 2024).
  const writes = both((c) => c.billedWriteUnits, perMonth) * regions
  const reads = both((c) => c.readUnits, perMonth)
  const { itemBytes } = assumptions
  const storedGb =
    (profile.mau *
      (itemBytes.user +
        itemBytes.session * (profile.loginsPerDay * deployed.idleTtlDays + 1) +
        itemBytes.retiredToken * profile.refreshesPerDay * deployed.absoluteTtlDays +
        itemBytes.outboxEvent * profile.loginsPerDay * 7)) /
    1e9
  const concurrency =
    (perRegion.refreshes * refreshMs + perRegion.logins * assumptions.warmMs.login) / 1000
  // Two functions sign; each container start: a grace data key (token), and an unwrap (envelope).
  const containerStartsPerMonth =
    (regions * (Math.ceil(concurrency + 2) * (24 * daysPerMonth))) / assumptions.containerHours
  const symmetricRequests = containerStartsPerMonth * (deployed.signing === 'envelope' ? 2 : 1)
  const signPrice =
    deployed.algorithm === 'RS256' ? prices.kms.requests : prices.kms.asymmetricRequests
  // The signing key (or envelope key), the grace key, and one retiring key on average; in
  // every region (a replica key is billed as a key).
  const kmsKeys = 3 * regions
  const kmsUsd =
    costOf(signPrice, both(signs, perMonth), 10_000) +
    costOf(prices.kms.requests, symmetricRequests, 10_000) +
    kmsKeys * prices.kms.keyMonth.usd
  const logBytes =
    assumptions.logBytesPerRequest.platform +
    assumptions.logBytesPerRequest.metrics +
    assumptions.logBytesPerRequest.accessLog
  const ingestedGb = (calls * logBytes) / 1e9
  const logsUsd =
    costOf(prices.cloudwatchLogs.ingestedGb, ingestedGb, 1) +
    costOf(prices.cloudwatchLogs.storedGbMonth, ingestedGb * (deployed.logRetentionDays / 30), 1)
  const traces = Math.max(0, calls * assumptions.traceSampling - 100_000)
  const events = deployed.bus ? perMonth.logins : 0
  const { replicatedBytes } = assumptions
  const transferGb =
    ((perMonth.refreshes * replicatedBytes.refresh + perMonth.logins * replicatedBytes.login) *
      (regions - 1) +
      forwarded.perMonth * replicatedBytes.forwarded) /
    1e9

  const cost: CostLine[] = [
    { name: 'API Gateway', usd: apiUsd, basis: `${millions(calls)} HTTP API requests` },
    {
      name: 'Lambda requests',
      usd: costOf(prices.lambda.requests, calls, 1e6),
      basis: `${millions(calls)} invocations`,
    },
    {
      name: 'Lambda duration',
      usd: costOf(prices.lambda.arm64GbSecond, gbSeconds, 1),
      basis: `${millions(gbSeconds)} GB-s (refresh ${refreshMs} ms at ${HTTP_FUNCTIONS.token.memoryMiB} MB, login ${assumptions.warmMs.login} ms at ${HTTP_FUNCTIONS.login.memoryMiB} MB)`,
    },
    {
      name: 'DynamoDB writes',
      usd: costOf(prices.dynamodb.writeRequestUnits, writes, 1e6),
      basis: `${millions(writes)} WRU (refresh ${refresh.billedWriteUnits}, login ${login.billedWriteUnits}${regions > 1 ? `, in each of ${regions} replicas` : ''})`,
    },
    {
      name: 'DynamoDB reads',
      usd: costOf(prices.dynamodb.readRequestUnits, reads, 1e6),
      basis: `${millions(reads)} RRU (refresh ${refresh.readUnits}, login ${login.readUnits})`,
    },
    {
      name: 'DynamoDB storage and backups',
      usd:
        regions *
        (costOf(prices.dynamodb.storageGbMonth, storedGb, 1) +
          costOf(prices.dynamodb.pitrGbMonth, storedGb, 1)),
      basis: `${storedGb.toFixed(0)} GB${regions > 1 ? ` in each of ${regions} replicas` : ''}, point-in-time recovery on`,
    },
    {
      name: 'KMS',
      usd: kmsUsd,
      basis: `${millions(both(signs, perMonth))} Sign, ${millions(symmetricRequests)} per container start, ${kmsKeys} keys`,
    },
    {
      name: 'CloudWatch Logs',
      usd: logsUsd,
      basis: `${ingestedGb.toFixed(0)} GB ingested (${logBytes} B a request), kept ${deployed.logRetentionDays} days`,
    },
    {
      name: 'X-Ray tracing',
      usd: costOf(prices.xray.tracesRecorded, traces, 1e6),
      basis: `${millions(traces)} traces (${assumptions.traceSampling * 100} % sampled)`,
    },
    {
      name: 'EventBridge',
      usd: costOf(prices.eventBridge.customEvents, events, 1e6),
      basis: `${millions(events)} security events (login.succeeded)`,
    },
    ...(regions > 1
      ? [
          {
            name: 'Cross-region transfer',
            usd: costOf(prices.dataTransfer.interRegionGb, transferGb, 1),
            basis: `${transferGb.toFixed(0)} GB: replication to ${regions - 1} other region(s), ${millions(forwarded.perMonth)} forwarded refreshes (${(offHome * 100).toFixed(0)} %)`,
          },
        ]
      : []),
  ]
  const totalUsd = cost.reduce((sum, each) => sum + each.usd, 0)
  return {
    profile,
    deployed,
    perMonth,
    perSecond,
    load,
    bindsAtMau: profile.mau / binding.utilization,
    awsBinding: { name: aws.name, atMau: profile.mau / aws.utilization },
    cost,
    totalUsd,
    usdPerMillionRefreshes: totalUsd / (perMonth.refreshes / 1e6),
  }
}

/** Cognito's user-pool price for the same monthly active users (docs/capacity.md). */
export function cognitoMonthlyUsd(mau: number, region = 'us-east-1') {
  const prices = PRICES[region]
  if (!prices) throw new Error(`no prices for region ${region}`)
  const { freeMau, essentialsMau, liteMau } = prices.cognito
  const billed = (from: number, to: number) => Math.max(0, Math.min(mau, to) - from)
  return {
    essentials: billed(freeMau, Number.POSITIVE_INFINITY) * essentialsMau.usd,
    lite:
      billed(freeMau, 100_000) * liteMau[0].usd +
      billed(100_000, 1_000_000) * liteMau[1].usd +
      billed(1_000_000, Number.POSITIVE_INFINITY) * liteMau[2].usd,
  }
}

const millions = (n: number) => `${(n / 1e6).toFixed(n < 10e6 ? 2 : 0)}M`
