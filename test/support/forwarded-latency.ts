/**
 * The added latency of a forwarded refresh (docs/multi-region.md), measured the same way in
 * both two-region simulations: refreshes decided at home and refreshes forwarded to it,
 * interleaved so that the machine's load falls on both alike, the first rounds left out as
 * warm-up, the medians reported. Never asserted: timing belongs to no test.
 */

/** What a front of a region answers a refresh with (test/support/harness.ts, test/stack/api.ts). */
interface RefreshingFront {
  refresh(token: string): Promise<{ status: number; body: { refresh_token?: string } }>
}

export interface ForwardedLatency {
  /** Medians, ms. */
  readonly home: number
  readonly forwarded: number
  /** Rounds after the warm-up: how many each median is of. */
  readonly samples: number
}

export async function measureForwardedLatency(options: {
  /** The home's front, and another region's (which forwards to the home). */
  readonly home: RefreshingFront
  readonly away: RefreshingFront
  /** Two refresh tokens of sessions homed in the home: one refreshed at home, one forwarded. */
  readonly tokens: readonly [string, string]
  readonly rounds: number
  readonly warmup: number
}): Promise<ForwardedLatency> {
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1] ?? 0
  const lanes = [
    { front: options.home, token: options.tokens[0], took: [] as number[] },
    { front: options.away, token: options.tokens[1], took: [] as number[] },
  ]
  for (let round = 0; round < options.rounds; round++) {
    for (const lane of lanes) {
      const started = performance.now()
      const reply = await lane.front.refresh(lane.token)
      lane.took.push(performance.now() - started)
      if (reply.status !== 200 || !reply.body.refresh_token) {
        throw new Error(`a measured refresh answered ${reply.status}`)
      }
      lane.token = reply.body.refresh_token
    }
  }
  const [home, away] = lanes as [(typeof lanes)[0], (typeof lanes)[0]]
  return {
    home: median(home.took.slice(options.warmup)),
    forwarded: median(away.took.slice(options.warmup)),
    samples: options.rounds - options.warmup,
  }
}
