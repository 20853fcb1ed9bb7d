/**
 * Coordination between the tabs of one browser: a Web Lock lets one tab at a
 * time refresh, and a BroadcastChannel hands its result to the others, so
 * that tabs never race each other into a second rotation. Where either API is
 * missing (React Native, Node, old browsers) every method is a local no-op and
 * the server's grace replay covers concurrent refreshes.
 */

/** Tokens as tabs pass them around. Times are epoch ms on the client's clock. */
export interface SharedTokens {
  readonly id: string
  readonly accessToken: string
  /** The token response's `token_type`: `DPoP` for a bound token. @default 'Bearer' */
  readonly tokenType?: string
  readonly issuedAt: number
  readonly expiresAt: number
}

/**
 * Why a session ended here: `invalid_grant`, the server ended it; `home_unreachable`, its
 * home region cannot be reached (several regions, `failover: 'relogin'`): log in again,
 * which the region that answered serves; `logout`, another tab logged out.
 */
export type EndReason = 'invalid_grant' | 'home_unreachable' | 'logout'

type Message =
  | ({ readonly type: 'tokens' } & SharedTokens)
  | { readonly type: 'ended'; readonly reason: EndReason }

export interface TabEvents {
  onTokens(tokens: SharedTokens): void
  onEnded(reason: EndReason): void
}

export interface Tabs {
  /** Runs `task` while holding the refresh lock of every tab of this origin. */
  exclusive<T>(task: () => Promise<T>): Promise<T>
  /**
   * Tokens another tab got after `knownId` while this tab waited for the lock,
   * or undefined if none did (then this tab refreshes itself).
   */
  newerThan(knownId: string | undefined): Promise<SharedTokens | undefined>
  publish(tokens: SharedTokens): void
  publishEnded(reason: EndReason): void
  close(): void
}

interface LockManagerLike {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>
}

interface ChannelLike {
  postMessage(message: unknown): void
  close(): void
  onmessage: ((event: { data: unknown }) => void) | null
}

interface WebStorageLike {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
}

interface BrowserGlobals {
  navigator?: { locks?: LockManagerLike }
  BroadcastChannel?: new (name: string) => ChannelLike
  localStorage?: WebStorageLike
}

/** How long to wait for the message of a refresh another tab already made. */
const MESSAGE_WAIT_MS = 5_000

const localOnly: Tabs = {
  exclusive: (task) => task(),
  newerThan: async () => undefined,
  publish: () => {},
  publishEnded: () => {},
  close: () => {},
}

export function createTabs(name: string, events: TabEvents, enabled: boolean): Tabs {
  const g = globalThis as unknown as BrowserGlobals
  const locks = g.navigator?.locks
  if (!enabled || !locks || !g.BroadcastChannel) return localOnly

  const channel = new g.BroadcastChannel(name)
  const received = new Map<string, SharedTokens>()
  const waiters = new Map<string, (tokens: SharedTokens | undefined) => void>()
  channel.onmessage = ({ data }) => {
    const message = data as Message
    if (message?.type === 'tokens') {
      const { type: _, ...tokens } = message
      remember(tokens)
      waiters.get(tokens.id)?.(tokens)
      events.onTokens(tokens)
    } else if (message?.type === 'ended') {
      events.onEnded(message.reason)
    }
  }

  // The id of the newest tokens any tab got, written after their message was
  // posted. It closes the gap between the lock and the channel: the lock can
  // pass to this tab before the winner's message has arrived.
  const latestKey = `${name}.latest`
  const readLatest = () => {
    try {
      return g.localStorage?.getItem(latestKey) ?? undefined
    } catch {
      return undefined // storage blocked: fall back to what the channel delivered
    }
  }
  const writeLatest = (id: string) => {
    try {
      g.localStorage?.setItem(latestKey, id)
    } catch {
      // as above
    }
  }
  // Tokens published before this tab listened never reach it: never wait for those.
  const latestAtStart = readLatest()

  function remember(tokens: SharedTokens) {
    received.set(tokens.id, tokens)
    if (received.size > 8) received.delete(received.keys().next().value as string)
  }

  return {
    exclusive: (task) => locks.request(name, task),
    async newerThan(knownId) {
      const latest = readLatest()
      if (!latest || latest === knownId || latest === latestAtStart) return undefined
      const known = received.get(latest)
      if (known) return known
      return new Promise<SharedTokens | undefined>((resolve) => {
        const timer = setTimeout(() => settle(undefined), MESSAGE_WAIT_MS)
        function settle(tokens: SharedTokens | undefined) {
          clearTimeout(timer)
          waiters.delete(latest as string)
          resolve(tokens)
        }
        waiters.set(latest, settle)
      })
    },
    publish(tokens) {
      remember(tokens)
      channel.postMessage({ type: 'tokens', ...tokens } satisfies Message)
      writeLatest(tokens.id)
    },
    publishEnded(reason) {
      channel.postMessage({ type: 'ended', reason } satisfies Message)
    },
    close() {
      channel.onmessage = null
      channel.close()
      for (const settle of waiters.values()) settle(undefined)
    },
  }
}
