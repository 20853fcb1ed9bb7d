/**
 * `@rotating-token-service/client`: a dependency-free client for SPAs, React
 * Native apps and Node 20+. See client/README.md.
 */
export {
  createDpop,
  type Dpop,
  type DpopKey,
  type DpopKeyStore,
  type DpopOptions,
  type DpopProofInput,
  defaultDpopKeyStore,
  type EcPublicJwk,
  ecdsaDerToRaw,
  type IndexedDbStoreOptions,
  indexedDbDpopKeyStore,
  memoryDpopKeyStore,
} from './dpop.js'
export {
  HOME_UNREACHABLE_DESCRIPTION,
  TokenClientError,
  type TokenClientErrorCode,
} from './errors.js'
export type {
  RefreshedEvent,
  SessionExpiredEvent,
  TokenClientEvents,
} from './events.js'
export {
  type CookieStorage,
  type CookieStorageOptions,
  cookieStorage,
  localStorageStorage,
  memoryStorage,
  type StorageOption,
  type TokenStorage,
} from './storage.js'
export type { EndReason } from './tabs.js'
export {
  createTokenClient,
  type TokenClient,
  type TokenClientOptions,
} from './token-client.js'
export type { Clock, FetchLike, RetryOptions } from './transport.js'
