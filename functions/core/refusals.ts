/**
 * Why a request was refused: a closed set of codes (docs/design.md "Refusal
 * codes"), as aws-jwt-verify names each failure with a class of its own.
 *
 * A refusal's code goes to the logs (`detail` of `request refused`, `reason`
 * of `token refused`), and tests key on it. It never reaches the client: the
 * public text of each OAuth error is fixed (core/errors.ts), whichever check
 * failed, so that the answer tells an attacker nothing.
 *
 * Each entry says which OAuth error carries the code and what it means; the
 * meaning is the text of the code table in docs/design.md (a unit test holds
 * the two equal).
 */
export const REFUSALS = {
  // Login and password change (core/login.ts, core/password-change.ts).
  impossible_username: ['invalid_grant', 'the username cannot exist: nothing was read'],
  unknown_username: ['invalid_grant', 'no user has this username (checked against a dummy hash)'],
  wrong_password: ['invalid_grant', 'the password is not the user’s'],
  user_disabled: ['invalid_grant', 'the right password of a disabled user'],
  user_changed_during_login: [
    'invalid_grant',
    'the user was disabled or changed password between the read and the session write',
  ],
  wrong_current_password: ['invalid_grant', 'a password change with a wrong `current_password`'],
  user_changed_during_password_change: [
    'invalid_grant',
    'another change, a disable or a logout everywhere won the race',
  ],
  // Refresh (core/refresh.ts, token/route.ts).
  cookie_missing: ['invalid_grant', 'a cookie-mode client sent no refresh-token cookie'],
  malformed_refresh_token: ['invalid_grant', 'not the refresh-token shape: nothing was read'],
  unknown_refresh_token: [
    'invalid_grant',
    'no session issued this token (garbage naming a session)',
  ],
  other_client: ['invalid_grant', 'the session belongs to another client'],
  session_disappeared: ['invalid_grant', 'the session was deleted during the refresh'],
  session_not_active: ['invalid_grant', 'the session was revoked (`check`: its revoked reason)'],
  session_expired: ['invalid_grant', 'the session reached its absolute lifetime'],
  session_idle: ['invalid_grant', 'the session was idle for too long'],
  user_not_active: ['invalid_grant', 'the session’s user is missing or disabled'],
  session_voided: [
    'invalid_grant',
    'a logout everywhere, disable or password change voided the session',
  ],
  dpop_required: ['invalid_grant', 'the client requires DPoP and the session is not bound'],
  dpop_key_mismatch: ['invalid_grant', 'the proof is of another key than the session’s'],
  sealed_successor_unopenable: [
    'invalid_grant',
    'a grace replay whose sealed successor cannot be opened',
  ],
  reuse_reported: ['invalid_grant', 'a retired token reused (`report` mode: the session is kept)'],
  reuse_detected: ['invalid_grant', 'a retired token reused: the session was revoked'],
  home_unreachable: [
    'invalid_grant',
    '`relogin`: the token’s home region could not be reached (`check`: which); nothing was read, and the public text is its own',
  ],
  // Login back-off (core/password-turn.ts).
  in_backoff: ['slow_down', 'the username is in back-off: no password was checked'],
  attempt_taken: ['slow_down', 'a concurrent attempt reserved the one attempt the back-off allows'],
  // DPoP nonces (core/dpop.ts): the client retries with the nonce of the `DPoP-Nonce` header.
  dpop_nonce_missing: ['use_dpop_nonce', 'the client requires nonces and the proof carries none'],
  dpop_nonce_stale: ['use_dpop_nonce', 'the proof’s nonce is not a current one of ours'],
  // Clients (core/service.ts).
  client_id_missing: ['invalid_client', 'no `client_id`'],
  client_id_unknown: ['invalid_client', 'the `client_id` names no client'],
  // The access token at the authorizer and the bearer routes (authorizer/*.ts, core/sessions.ts).
  no_authorization_header: ['invalid_token', 'no `Authorization` header'],
  not_bearer_or_dpop: ['invalid_token', 'not `Bearer <token>` or `DPoP <token>`'],
  token_too_large: ['invalid_token', 'the header or token is over the limit: not decoded'],
  not_compact_jws: ['invalid_token', 'not three base64url segments'],
  not_json: ['invalid_token', 'a segment is not a JSON object (`check`: header or payload)'],
  alg_not_allowed: ['invalid_token', '`alg` is not RS256 or ES256'],
  typ_not_at_jwt: ['invalid_token', '`typ` is not `at+jwt`'],
  foreign_header: ['invalid_token', 'the header carries a member we refuse (`check`: which)'],
  kid_malformed: ['invalid_token', '`kid` missing or not 1-128 base64url characters'],
  unknown_kid: ['invalid_token', 'no key of the set has this `kid` (after a refetch)'],
  alg_not_the_keys: ['invalid_token', '`alg` is not the alg of the key `kid` names'],
  signature_not_canonical: ['invalid_token', 'the signature segment is not canonical base64url'],
  es256_high_s: ['invalid_token', 'an ES256 signature with a high S'],
  bad_signature: ['invalid_token', 'the signature does not verify'],
  wrong_iss: ['invalid_token', '`iss` is not the issuer'],
  wrong_aud: ['invalid_token', '`aud` names none of the audiences'],
  date_not_a_number: ['invalid_token', '`exp`, `iat` or `nbf` is not a number (`check`: which)'],
  token_expired: ['invalid_token', '`exp` (plus the skew, less the answer cache) has passed'],
  not_yet_valid: ['invalid_token', '`nbf` is in the future beyond the skew'],
  issued_in_future: ['invalid_token', '`iat` is in the future beyond the skew'],
  lifetime_too_long: ['invalid_token', '`exp − iat` is longer than any client’s tokens'],
  claim_missing: [
    'invalid_token',
    '`sub`, `jti`, `client_id`, `sid`, `scope` or `roles` missing or mistyped (`check`: which)',
  ],
  username_not_a_string: ['invalid_token', '`username` is there but not a string'],
  cnf_without_jkt: ['invalid_token', '`cnf` binds the token some way other than a DPoP key'],
  dpop_scheme_unbound_token: ['invalid_token', 'an unbound token under the `DPoP` scheme'],
  bound_token_as_bearer: ['invalid_token', 'a DPoP-bound token under `Bearer` (a downgrade)'],
  dpop_proof_missing: ['invalid_token', 'a DPoP-bound token without a `DPoP` proof'],
  dpop_proof_invalid: ['invalid_token', 'the DPoP proof fails a check (`check`: which)'],
  dpop_proof_other_key: ['invalid_token', 'the proof is not of the key the token is bound to'],
  dpop_proof_replayed: ['invalid_token', 'the proof was used before in this container'],
  session_ended: ['invalid_token', 'strict mode: the session is not live'],
  calling_session_ended: ['invalid_token', 'the session of a bearer route’s caller has ended'],
  no_authorizer_context: ['invalid_token', 'a bearer route reached without an authorizer'],
  authorizer_context_incomplete: [
    'invalid_token',
    'the authorizer context lacks a claim (`check`)',
  ],
  authorizer_denied: ['invalid_token', 'local mode: the authorizer denied the token'],
} as const satisfies Record<string, readonly [OAuthCode, string]>

type OAuthCode =
  | 'invalid_grant'
  | 'invalid_token'
  | 'slow_down'
  | 'invalid_client'
  | 'use_dpop_nonce'

/** Every refusal code. */
export type RefusalCode = keyof typeof REFUSALS

/** The codes that the OAuth error `error` carries. */
export type RefusalOf<E extends OAuthCode> = {
  [K in RefusalCode]: (typeof REFUSALS)[K][0] extends E ? K : never
}[RefusalCode]

export type GrantRefusal = RefusalOf<'invalid_grant'>
export type TokenRefusal = RefusalOf<'invalid_token'>
export type ThrottleRefusal = RefusalOf<'slow_down'>
export type ClientRefusal = RefusalOf<'invalid_client'>
export type NonceRefusal = RefusalOf<'use_dpop_nonce'>

/** Every code, in table order. */
export const REFUSAL_CODES = Object.keys(REFUSALS) as RefusalCode[]
