/** What a failed call of the client reports. `code` is the server's OAuth error code, or one of ours. */
export type TokenClientErrorCode =
  /** No session: log in first. */
  | 'login_required'
  /** The request never got an answer (offline, DNS, connection reset, lost response). */
  | 'network_error'
  /** The server answered something that is not a token response. */
  | 'invalid_response'
  /** An OAuth error code from the server: `invalid_grant`, `invalid_client`, `access_denied`, ... */
  | (string & {})

export interface TokenClientErrorDetails {
  /** HTTP status of the answer, when there was one. */
  readonly status?: number
  /** Worth trying again later: network errors, 408, 429 and 5xx. The session is kept. */
  readonly transient?: boolean
  /** The server's `Retry-After`, in milliseconds. */
  readonly retryAfterMs?: number
  readonly cause?: unknown
}

export class TokenClientError extends Error {
  override readonly name = 'TokenClientError'
  readonly status: number | undefined
  readonly transient: boolean
  readonly retryAfterMs: number | undefined

  constructor(
    readonly code: TokenClientErrorCode,
    message: string,
    details: TokenClientErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.status = details.status
    this.transient = details.transient ?? false
    this.retryAfterMs = details.retryAfterMs
  }
}

/**
 * The `error_description` of the one `invalid_grant` that is not the end of the session on
 * the server: its home region cannot be reached (docs/multi-region.md). The SDK ends it here
 * with the reason `home_unreachable`: a new login works, in the region that answered.
 */
export const HOME_UNREACHABLE_DESCRIPTION = 'home region unavailable'
