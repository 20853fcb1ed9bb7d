/**
 * `rotating-token-service/client`: a dependency-free client for SPAs, React
 * Native apps and Node 20+. See client/README.md.
 */
export { TokenClientError, type TokenClientErrorCode } from './errors.js'
export {
  type CookieStorage,
  cookieStorage,
  localStorageStorage,
  memoryStorage,
  type StorageOption,
  type TokenStorage,
} from './storage.js'
export type { EndReason } from './tabs.js'
export {
  type Clock,
  createTokenClient,
  type FetchLike,
  type RefreshedEvent,
  type RetryOptions,
  type SessionExpiredEvent,
  type TokenClient,
  type TokenClientEvents,
  type TokenClientOptions,
} from './token-client.js'
