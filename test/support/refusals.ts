import type { OAuthError } from '../../functions/core/errors.js'

/**
 * A refusal as the logs key it: its code (core/refusals.ts), then the member,
 * claim or proof check it names, if any (`foreign_header jku`).
 */
export const refusalOf = (error: OAuthError): string =>
  error.check === undefined ? String(error.code) : `${error.code} ${error.check}`
