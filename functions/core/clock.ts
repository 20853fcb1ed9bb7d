/** Where all time comes from. Milliseconds since the epoch, like `Date.now()`. */
export interface Clock {
  now(): number
}

export const systemClock: Clock = { now: () => Date.now() }
