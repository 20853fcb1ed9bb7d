/**
 * `npm run capacity [-- --mau N --logins-per-day N --refreshes-per-day N
 * --busy-hours N --region R --signing kms|envelope --regions N --off-home-share F
 * --before --edge --json]`: the
 * capacity and cost model (lib/capacity/model.ts) for the committed config
 * (token-service.config.ts, or `--config <file>`) and a user profile (issue
 * 17's example by default: 1M users, 1 login and 32 refreshes a day, in 8
 * busy hours). `--before` prices what a call cost before issue 17.
 */
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { edgeCost, edgeMonthlyUsd } from '../lib/capacity/edge.js'
import {
  capacityModel,
  cognitoMonthlyUsd,
  type Deployed,
  EXAMPLE_PROFILE,
  type Profile,
} from '../lib/capacity/model.js'
import { BEFORE_ISSUE_17, MEASURED_PER_CALL } from '../lib/capacity/per-call.js'
import { PRICES_AS_OF } from '../lib/capacity/prices.js'
import { parseConfig, type TokenServiceConfig } from '../lib/config.js'
import { DEFAULTS } from '../lib/defaults.js'
import { activeKeyOf, type KeyLedgerFile } from '../lib/signing-keys.js'

const { values } = parseArgs({
  options: {
    config: { type: 'string', default: 'token-service.config.ts' },
    mau: { type: 'string' },
    'logins-per-day': { type: 'string' },
    'refreshes-per-day': { type: 'string' },
    'busy-hours': { type: 'string' },
    region: { type: 'string' },
    signing: { type: 'string' },
    regions: { type: 'string' },
    'off-home-share': { type: 'string' },
    before: { type: 'boolean', default: false },
    edge: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
})

const number = (name: string, value: string | undefined, fallback: number) => {
  if (value === undefined) return fallback
  const parsed = Number(value.replace(/_/g, ''))
  if (!Number.isFinite(parsed) || parsed <= 0)
    throw new Error(`--${name} must be a positive number`)
  return parsed
}

const file = (await import(pathToFileURL(resolve(String(values.config))).href)) as {
  default: unknown
}
const config: TokenServiceConfig = parseConfig(file.default, String(values.config))

/** How the active key signs: the ledger's record of it, else the `signing` setting. */
function activeSigning(): 'kms' | 'envelope' {
  if (values.before) return 'kms'
  if (values.signing === 'kms' || values.signing === 'envelope') return values.signing
  if (values.signing !== undefined) throw new Error('--signing must be kms or envelope')
  const lock = config.signingKeysLock ?? 'signing-keys.lock.json'
  const keys = config.signingKeys ?? DEFAULTS.signingKeys
  const ledger =
    lock !== 'off' && existsSync(lock)
      ? (JSON.parse(readFileSync(lock, 'utf8')) as KeyLedgerFile).stacks[
          config.stackName ?? 'TokenService'
        ]
      : undefined
  const entry = ledger?.keys[activeKeyOf(keys).id]
  if (entry) return entry.signing ?? 'kms'
  return config.signing ?? (DEFAULTS.signing as 'kms')
}

const longest = (
  pick: (client: TokenServiceConfig['clients'][number]) => number | undefined,
  fallback: number,
) => Math.max(...config.clients.map((client) => pick(client) ?? fallback)) / 86_400

const deployed: Deployed = {
  signing: activeSigning(),
  algorithm: config.algorithm ?? (DEFAULTS.algorithm as 'RS256'),
  stageRate: config.throttle?.rateLimit ?? DEFAULTS.throttle.rateLimit,
  loginRate: config.loginThrottle?.rateLimit ?? DEFAULTS.loginThrottle.rateLimit,
  bus: config.securityEvents?.bus ?? DEFAULTS.securityEvents.bus,
  logRetentionDays: config.logRetentionDays ?? 90,
  absoluteTtlDays: longest((client) => client.refresh_absolute_ttl_seconds, 2_592_000),
  idleTtlDays: longest((client) => client.refresh_idle_ttl_seconds, 604_800),
  // The config's `regions`, or `--regions N` to size a deployment before setting it.
  regions: Math.round(number('regions', values.regions, config.regions?.length ?? 1)),
}
const profile: Profile = {
  mau: number('mau', values.mau, EXAMPLE_PROFILE.mau),
  loginsPerDay: number('logins-per-day', values['logins-per-day'], EXAMPLE_PROFILE.loginsPerDay),
  refreshesPerDay: number(
    'refreshes-per-day',
    values['refreshes-per-day'],
    EXAMPLE_PROFILE.refreshesPerDay,
  ),
  busyHours: number('busy-hours', values['busy-hours'], EXAMPLE_PROFILE.busyHours),
  region: values.region ?? EXAMPLE_PROFILE.region,
  ...(values['off-home-share'] !== undefined && {
    offHomeShare: Math.min(1, number('off-home-share', values['off-home-share'], 0)),
  }),
}
const perCall = values.before ? BEFORE_ISSUE_17 : MEASURED_PER_CALL[deployed.signing]
const model = capacityModel(profile, deployed, perCall)

if (values.json) {
  process.stdout.write(`${JSON.stringify(model, null, 2)}\n`)
} else {
  const usd = (n: number) => `$${n.toLocaleString('en-US', { maximumFractionDigits: 0 })}`
  const rate = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: n < 10 ? 1 : 0 })
  const out: string[] = [
    `Capacity and cost: ${profile.mau.toLocaleString('en-US')} monthly users, ${profile.loginsPerDay} login(s) and ${profile.refreshesPerDay} refreshes a day each, in ${profile.busyHours} busy hours; ${profile.region}${(deployed.regions ?? 1) > 1 ? ` and ${(deployed.regions ?? 1) - 1} other region(s) at its prices, the traffic split evenly` : ''}; signing ${deployed.signing} (${deployed.algorithm})${values.before ? '; per-call figures from before issue 17' : ''}`,
    `Per call (the stack suite's measurement): refresh ${perCall.refresh.readUnits} RRU, ${perCall.refresh.billedWriteUnits} WRU, ${perCall.refresh.kms.Sign ?? 0} KMS Sign; login ${perCall.login.readUnits} RRU, ${perCall.login.billedWriteUnits} WRU, ${perCall.login.kms.Sign ?? 0} KMS Sign`,
    '',
    `Busy-hour load: ${rate(model.perSecond.refreshes)} refreshes/s, ${rate(model.perSecond.logins)} logins/s`,
    ...model.load.map(
      (line) =>
        `  ${line.name.padEnd(30)} ${rate(line.load).padStart(8)} of ${rate(line.quota).padStart(7)}  ${(line.utilization * 100).toFixed(0).padStart(4)} %`,
    ),
    `  binds first: ${model.load[0]?.name} (at about ${Math.round(model.bindsAtMau).toLocaleString('en-US')} monthly users)`,
    `  first AWS quota to bind, the config's throttles aside: ${model.awsBinding.name} (at about ${Math.round(model.awsBinding.atMau).toLocaleString('en-US')} monthly users)`,
    '',
    `Monthly cost (prices of ${PRICES_AS_OF}, lib/capacity/prices.ts):`,
    ...model.cost.map(
      (line) => `  ${line.name.padEnd(30)} ${usd(line.usd).padStart(8)}  ${line.basis}`,
    ),
    `  ${'total'.padEnd(30)} ${usd(model.totalUsd).padStart(8)}  ${`$${model.usdPerMillionRefreshes.toFixed(2)}`} per million refreshes`,
    ...(values.edge || config.edge
      ? [
          `  ${'with the edge (CloudFront, WAF)'.padEnd(30)} ${usd(edgeMonthlyUsd(model.perMonth.logins + model.perMonth.refreshes)).padStart(8)}  more: $${edgeCost().perMillionRequests.toFixed(2)} per million requests and $${edgeCost().monthlyFixed.toFixed(2)} a month (docs/capacity.md "The edge")`,
        ]
      : []),
    '',
    `Cognito user pools for the same users: Essentials ${usd(cognitoMonthlyUsd(profile.mau, profile.region).essentials)}, Lite ${usd(cognitoMonthlyUsd(profile.mau, profile.region).lite)} a month (docs/capacity.md)`,
  ]
  process.stdout.write(`${out.join('\n')}\n`)
}
