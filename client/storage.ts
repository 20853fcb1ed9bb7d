/**
 * Where the client keeps the refresh token: a small key-value interface that
 * `localStorage`, React Native's AsyncStorage and Expo SecureStore (through a
 * three-line adapter) all fit. Methods may be synchronous or return promises.
 */
export interface TokenStorage {
  getItem(key: string): string | null | undefined | Promise<string | null | undefined>
  setItem(key: string, value: string): void | Promise<void>
  removeItem(key: string): void | Promise<void>
}

/**
 * Cookie mode: the server keeps the refresh token in an `HttpOnly` cookie, so
 * it never touches JavaScript. The client only sends requests with
 * `credentials: 'include'`. Needs a client with `cookie_mode: true` on the server.
 */
export interface CookieStorage {
  readonly kind: 'cookie'
  /**
   * Where the client notes that a cookie session may exist (a flag, never a token), so that
   * a first visit makes no refresh that can only fail. `null`: no note, always try.
   */
  readonly sessionHint: TokenStorage | null
}

export type StorageOption = TokenStorage | CookieStorage

export const isCookieStorage = (storage: StorageOption): storage is CookieStorage =>
  (storage as CookieStorage).kind === 'cookie'

/**
 * The default: the refresh token lives in this JavaScript realm only. Nothing
 * outlives a page reload or an app restart; nothing is left on disk either.
 */
export function memoryStorage(): TokenStorage {
  const items = new Map<string, string>()
  return {
    getItem: (key) => items.get(key) ?? null,
    setItem: (key, value) => {
      items.set(key, value)
    },
    removeItem: (key) => {
      items.delete(key)
    },
  }
}

interface WebStorage {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  removeItem(key: string): void
}

/**
 * The browser's `localStorage`: the session survives reloads and is shared by
 * the origin's tabs. Trade-off: any script that runs on the origin (an XSS
 * bug, a compromised dependency) can read the refresh token and use it from
 * anywhere until the session ends. Prefer `cookieStorage()` where the API can
 * set cookies for the page's site.
 */
export function localStorageStorage(): TokenStorage {
  const storage = () => {
    const local = (globalThis as { localStorage?: WebStorage }).localStorage
    if (!local) throw new Error('localStorage is not available here: pass another storage')
    return local
  }
  return {
    getItem: (key) => storage().getItem(key),
    setItem: (key, value) => storage().setItem(key, value),
    removeItem: (key) => storage().removeItem(key),
  }
}

export interface CookieStorageOptions {
  /**
   * Where to note that this browser has a cookie session: a flag, set at login and each
   * refresh, removed when the session ends. Without the flag, `getAccessToken()` answers
   * `null` at once instead of a refresh the server can only refuse (a 400 in the console
   * of every first visit). `false` always tries the cookie.
   * @default `localStorageStorage()` where `localStorage` exists, else `false`
   */
  readonly sessionHint?: TokenStorage | false
}

/** Cookie mode: the refresh token is an `HttpOnly` cookie that JavaScript never sees. */
export function cookieStorage(options: CookieStorageOptions = {}): CookieStorage {
  const hasLocalStorage = (globalThis as { localStorage?: unknown }).localStorage !== undefined
  const hint = options.sessionHint ?? (hasLocalStorage ? localStorageStorage() : false)
  return { kind: 'cookie', sessionHint: hint === false ? null : hint }
}
