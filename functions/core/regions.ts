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
   * refusal (`home_unreachable`) that the client SDK turns into a new login here;
   * `adopt`, this region takes the session over when the home is declared lost (an
   * operator's switch, `npm run regions`), else 503 and a retry.
   */
  readonly failover: 'relogin' | 'adopt'
}

/** The primary: the home of a session whose item names none (an `rt1_` session). */
export const primaryOf = (regions: Regions): string => regions.all[0] as string

/** The region a session item homes its session in. */
export const homeOfSession = (session: { readonly home?: string }, regions: Regions): string =>
  session.home ?? primaryOf(regions)

/**
 * An operator's declaration about a region (docs/multi-region.md "Declaring a region
 * lost"): an item of the global table, written in any healthy region, that replicates.
 */
export interface RegionDeclaration {
  readonly region: string
  /** `lost`: the adopting regions may take its sessions over; `restored`: no longer. */
  readonly state: 'lost' | 'restored'
  /** Who declared it (the operator's name, or the alarm that flipped it). */
  readonly by: string
  /** Epoch ms. */
  readonly at: number
}

/** The operators' switch: one item per region (functions/adapters/dynamodb/regions.ts). */
export interface RegionSwitch {
  /** The region's declaration, if any was ever made (an eventually consistent read). */
  findRegionDeclaration(region: string): Promise<RegionDeclaration | undefined>
  /** Writes the declaration over any earlier one. */
  declareRegion(declaration: RegionDeclaration): Promise<void>
}

/** How long a container trusts what it read of a region's switch. */
export const REGION_SWITCH_CACHE_MS = 10_000

/**
 * Whether a region is declared lost, read at most once per `ttlMs` per region and
 * container: the read happens only on the path where a home did not answer, and during an
 * outage that path is taken by every refresh homed there, which must not each read it.
 * A failed read is not cached and throws: the caller answers 503.
 */
export function lostRegions(
  store: Pick<RegionSwitch, 'findRegionDeclaration'>,
  clock: { now(): number },
  ttlMs = REGION_SWITCH_CACHE_MS,
): { isLost(region: string): Promise<boolean> } {
  const cache = new Map<string, { lost: boolean; until: number }>()
  return {
    async isLost(region) {
      const now = clock.now()
      const known = cache.get(region)
      if (known && now < known.until) return known.lost
      const declaration = await store.findRegionDeclaration(region)
      const lost = declaration?.state === 'lost'
      cache.set(region, { lost, until: now + ttlMs })
      return lost
    },
  }
}

/** The cached reading of the switch that token functions get (`lostRegions`). */
export type LostRegions = ReturnType<typeof lostRegions>

/**
 * Thrown by a decision that found the session's item homed in another region than this
 * one (an adopted session, or a token whose item moved): the caller hands the request to
 * that home. Never an answer: the routes catch it.
 */
export class HomeMoved extends Error {
  constructor(readonly home: string) {
    super(`the session is homed in ${home}`)
    this.name = 'HomeMoved'
  }
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
