/**
 * The capacity model (lib/capacity/model.ts) on issue 17's example: 1M monthly
 * users, one login and 32 refreshes a day each, in 8 busy hours. The per-call
 * figures it prices are the stack suite's measurement (test/stack/capacity.test.ts
 * keeps them equal).
 */
import { describe, expect, it } from 'vitest'
import {
  capacityModel,
  cognitoMonthlyUsd,
  type Deployed,
  EXAMPLE_PROFILE,
} from '../../lib/capacity/model.js'
import { BEFORE_ISSUE_17, MEASURED_PER_CALL } from '../../lib/capacity/per-call.js'

const deployed = (signing: 'kms' | 'envelope'): Deployed => ({
  signing,
  algorithm: 'RS256',
  stageRate: 500,
  loginRate: 20,
  bus: true,
  logRetentionDays: 90,
  absoluteTtlDays: 30,
  idleTtlDays: 7,
})

describe('the capacity model, on issue 17’s example', () => {
  const before = capacityModel(EXAMPLE_PROFILE, deployed('kms'), BEFORE_ISSUE_17)
  const kms = capacityModel(EXAMPLE_PROFILE, deployed('kms'), MEASURED_PER_CALL.kms)
  const envelope = capacityModel(EXAMPLE_PROFILE, deployed('envelope'), MEASURED_PER_CALL.envelope)

  it('issues about 990M tokens a month, about 1,150 a second in the busy hours', () => {
    expect(before.perMonth.logins + before.perMonth.refreshes).toBe(990_000_000)
    expect(Math.round(before.perSecond.logins + before.perSecond.refreshes)).toBe(1146)
  })

  it('prices the code before issue 17 as the issue estimated it: $10-13k a month, $10-13 per million refreshes', () => {
    expect(before.totalUsd).toBeGreaterThan(10_000)
    expect(before.totalUsd).toBeLessThan(13_500)
    const writes = before.cost.find((line) => line.name === 'DynamoDB writes')?.usd ?? 0
    expect(writes).toBeGreaterThan(3_200)
    expect(writes).toBeLessThan(6_500)
  })

  it('finds KMS the first AWS quota to bind with KMS signing, below the example’s load', () => {
    expect(kms.awsBinding.name).toBe('KMS, asymmetric requests')
    expect(kms.awsBinding.atMau).toBeLessThan(EXAMPLE_PROFILE.mau)
  })

  it('makes no KMS request per token with envelope keys, and the first AWS quota to bind is then no longer KMS', () => {
    const kmsLoad = envelope.load.find((line) => line.name === 'KMS, asymmetric requests')
    expect(kmsLoad?.load).toBe(0)
    expect(envelope.awsBinding.name).not.toMatch(/KMS/)
    expect(envelope.awsBinding.atMau).toBeGreaterThan(EXAMPLE_PROFILE.mau)
  })

  it('costs less per million refreshes after issue 17, and least with envelope keys', () => {
    expect(kms.usdPerMillionRefreshes).toBeLessThan(before.usdPerMillionRefreshes)
    expect(envelope.usdPerMillionRefreshes).toBeLessThan(kms.usdPerMillionRefreshes)
  })

  it('prices Cognito’s Essentials plan at $0.015 a user beyond 10,000 free ones', () => {
    expect(cognitoMonthlyUsd(1_000_000).essentials).toBeCloseTo(14_850)
  })

  it('refuses a region it has no prices for, naming the file that has them', () => {
    expect(() =>
      capacityModel(
        { ...EXAMPLE_PROFILE, region: 'mars-1' },
        deployed('kms'),
        MEASURED_PER_CALL.kms,
      ),
    ).toThrow(/lib\/capacity\/prices\.ts/)
  })
})

describe('the capacity model in several regions (docs/multi-region.md "Capacity")', () => {
  const one = capacityModel(EXAMPLE_PROFILE, deployed('envelope'), MEASURED_PER_CALL.envelope)
  const two = capacityModel(
    EXAMPLE_PROFILE,
    { ...deployed('envelope'), regions: 2 },
    MEASURED_PER_CALL.envelope,
  )
  const usd = (model: typeof one, name: string) =>
    model.cost.find((line) => line.name === name)?.usd ?? 0
  const load = (model: typeof one, name: string) =>
    model.load.find((line) => line.name === name)?.load ?? 0

  it('pays every write and every stored byte once per replica', () => {
    expect(usd(two, 'DynamoDB writes')).toBeCloseTo(2 * usd(one, 'DynamoDB writes'))
    expect(usd(two, 'DynamoDB storage and backups')).toBeCloseTo(
      2 * usd(one, 'DynamoDB storage and backups'),
    )
    expect(usd(one, 'Cross-region transfer')).toBe(0)
    expect(usd(two, 'Cross-region transfer')).toBeGreaterThan(0)
  })

  it('splits the requests between the regions but not the writes: each replica applies them all', () => {
    expect(load(two, 'DynamoDB writes, new table')).toBeCloseTo(
      load(one, 'DynamoDB writes, new table'),
    )
    expect(load(two, 'DynamoDB reads, new table')).toBeCloseTo(
      load(one, 'DynamoDB reads, new table') / 2,
    )
    // Half the requests, plus the forwarded refreshes (5 % of them by default), in each region.
    const forwardedShare =
      0.05 * (two.perSecond.refreshes / (two.perSecond.refreshes + two.perSecond.logins))
    expect(load(two, 'API Gateway, account')).toBeCloseTo(
      (load(one, 'API Gateway, account') * (1 + forwardedShare)) / 2,
    )
  })

  it('counts each forwarded refresh as a second request, invocation and round trip', () => {
    const none = capacityModel(
      { ...EXAMPLE_PROFILE, offHomeShare: 0 },
      { ...deployed('envelope'), regions: 2 },
      MEASURED_PER_CALL.envelope,
    )
    const all = capacityModel(
      { ...EXAMPLE_PROFILE, offHomeShare: 1 },
      { ...deployed('envelope'), regions: 2 },
      MEASURED_PER_CALL.envelope,
    )
    expect(usd(none, 'Lambda requests')).toBeCloseTo(usd(one, 'Lambda requests'))
    expect(usd(all, 'Lambda requests')).toBeGreaterThan(usd(none, 'Lambda requests'))
    expect(usd(all, 'Lambda duration')).toBeGreaterThan(usd(none, 'Lambda duration'))
    expect(all.totalUsd).toBeGreaterThan(none.totalUsd)
  })
})
