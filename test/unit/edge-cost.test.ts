import { App, Stack } from 'aws-cdk-lib'
import { describe, expect, it } from 'vitest'
import { EDGE_RULES, edgeCost, edgeMonthlyUsd } from '../../lib/capacity/edge.js'
import { EdgeWebAcl } from '../../lib/token-service-edge.js'

describe('the edge’s cost (docs/capacity.md "The edge")', () => {
  it('prices a million requests through CloudFront and WAF as docs/capacity.md states, and a month’s fixed part', () => {
    const cost = edgeCost()
    expect(cost.perMillionByLine).toEqual({
      cloudFrontRequests: 1,
      transferOut: 0.21,
      transferToOrigin: 0.03,
      wafRequests: 0.6,
    })
    expect(cost.perMillionRequests).toBe(1.84)
    expect(cost.monthlyFixed).toBe(9.4)
  })

  it('adds about $1,830 a month to the 1M-user example’s 990M requests', () => {
    expect(Math.round(edgeMonthlyUsd(990_000_000))).toBe(1831)
  })

  it('counts every rule the web ACL holds', () => {
    const acl = new EdgeWebAcl(new Stack(new App(), 'S', { env: { region: 'us-east-1' } }), 'A', {
      ratePerIp: 1000,
    })
    expect((acl.webAcl.rules as unknown[]).length).toBe(EDGE_RULES)
  })
})
