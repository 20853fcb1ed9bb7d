/**
 * Several regions (docs/multi-region.md): each session has a home, the region
 * whose login created it, and only its home decides its refreshes, so that
 * rotation, the grace replay and reuse detection stay one conditional write in
 * one place.
 */

/** What a function knows of the regions: undefined with one region. */
export interface Regions {
  /** The region this function runs in (`HOME_REGION`): the home of the sessions its logins start. */
  readonly here: string
  /** Every region, the primary first (`REGIONS`): the primary is the home of `rt1_` tokens. */
  readonly all: readonly string[]
  /**
   * What a refresh gets when its home cannot be reached (`FAILOVER`): `relogin`, a
   * refusal (`home_unreachable`) that the client SDK turns into a new login here.
   */
  readonly failover: 'relogin'
}

/** What a forwarded refresh came back with: the home's answer, to be returned as is. */
export interface HomeAnswer {
  readonly statusCode: number
  readonly headers?: Readonly<Record<string, string>>
  readonly cookies?: readonly string[]
  readonly body?: string
}

/**
 * The way to a session's home region (functions/adapters/home-region.ts in Lambda).
 * `forward` hands the request, exactly as this region received it, to the home's token
 * function, marked as forwarded so that the home decides it and never forwards it
 * again. It resolves to the home's answer, or to `unreachable` when the home could not
 * be asked (region down, network, throttled, timeout): then nothing was decided here.
 * Any other failure (the home's function failed) rejects, and this region answers 503.
 */
export interface HomeRegion {
  forward(home: string, request: unknown): Promise<HomeAnswer | 'unreachable'>
}

/** The functions that forward to a session's home, each its own way there. */
export interface HomeRegions {
  readonly token: HomeRegion
  readonly revoke: HomeRegion
  readonly sessions: HomeRegion
}
