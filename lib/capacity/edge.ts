import { EDGE_PRICES } from './prices.js'

/** What a request through the edge carries, in bytes: a refresh's, the bulk of the traffic. */
export const EDGE_REQUEST_BYTES = {
  /**
   * To the client: the token response (an access token of about 900 bytes, a refresh token,
   * JSON) and its headers (security headers, CORS, Set-Cookie in cookie mode): about 2.5 KB.
   */
  response: 2_500,
  /** To the origin: headers (a DPoP proof, cookies, User-Agent) and the form body: about 1.5 KB. */
  request: 1_500,
} as const

/** The web ACL's rules (lib/token-service-edge.ts): the rate rule and three managed groups. */
export const EDGE_RULES = 4

/**
 * What the edge costs: per million requests (CloudFront requests and transfer, WAF requests),
 * and a month's fixed part (the web ACL, its rules, the origin secret). API Gateway's own
 * transfer to CloudFront, an AWS origin, is free.
 */
export function edgeCost(bytes = EDGE_REQUEST_BYTES) {
  const { cloudFront, waf, secretsManager } = EDGE_PRICES
  const gb = (perRequest: number) => (perRequest * 1_000_000) / 1e9
  const lines = {
    cloudFrontRequests: cloudFront.httpsRequests.usd * 100,
    transferOut: gb(bytes.response) * cloudFront.transferOutGb.usd,
    transferToOrigin: gb(bytes.request) * cloudFront.transferToOriginGb.usd,
    wafRequests: waf.requests.usd,
  }
  const round = (usd: number) => Math.round(usd * 100) / 100
  return {
    perMillionRequests: round(Object.values(lines).reduce((sum, usd) => sum + usd, 0)),
    perMillionByLine: Object.fromEntries(
      Object.entries(lines).map(([line, usd]) => [line, round(usd)]),
    ) as Record<keyof typeof lines, number>,
    monthlyFixed: round(
      waf.webAclMonth.usd + EDGE_RULES * waf.ruleMonth.usd + secretsManager.secretMonth.usd,
    ),
  }
}

/** The edge's cost for a month of `requests` (a month's fixed part included), USD. */
export function edgeMonthlyUsd(requests: number): number {
  const cost = edgeCost()
  return (requests / 1_000_000) * cost.perMillionRequests + cost.monthlyFixed
}
