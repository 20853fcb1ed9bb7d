/** Where all time comes from. Milliseconds since the epoch, like `Date.now()`. */
export interface Clock {
  now(): number
}

export const systemClock: Clock = { now: () => Date.now() }

/** Whole seconds since the epoch, as JWT and DynamoDB TTL want them. */
export const epochSeconds = (clock: Clock): number => Math.floor(clock.now() / 1000)
