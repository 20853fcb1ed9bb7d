/**
 * The key ledger's gate, for any CDK app that deploys the construct: the rules a change of
 * `signingKeys` is checked against (lib/signing-keys.ts `planKeyLedger`), and the error synth
 * fails with when the ledger refuses one. bin/app.ts uses them as a consumer of the
 * package would (construct/README.md "Key rotation").
 */
import { DEFAULTS, NATIVE_AUTHORIZER_KEY_CACHE, VERIFIER_CLOCK_MARGIN } from './defaults.js'
import {
  type KeyChangeRules,
  type KeyLedgerPlan,
  planKeyLedger,
  SigningKeyError,
} from './signing-keys.js'
import { longestAccessTokenTtl } from './token-authorizer.js'
import type { TokenServiceProps } from './token-service.js'

/** The key-change rules for a stack's settings (see lib/signing-keys.ts). */
export function keyChangeRules(
  props: Pick<
    TokenServiceProps,
    | 'clients'
    | 'algorithm'
    | 'signing'
    | 'jwksMaxAge'
    | 'authorizerSettings'
    | 'tokenBackdateSeconds'
  >,
  now: Date,
  /** Keys added now are multi-Region (the config's `regions`, docs/multi-region.md). */
  multiRegion = false,
): KeyChangeRules {
  const jwksMaxAge = props.jwksMaxAge ?? DEFAULTS.jwksMaxAge
  // Our authorizer accepts a token until exp + its skew: a wider skew keeps a retired key longer.
  const clockMargin = Math.max(
    VERIFIER_CLOCK_MARGIN.toSeconds(),
    (props.authorizerSettings?.clockSkewSeconds ?? DEFAULTS.authorizerSettings.clockSkewSeconds) +
      (props.tokenBackdateSeconds ?? DEFAULTS.tokenBackdateSeconds),
  )
  return {
    algorithm: props.algorithm ?? DEFAULTS.algorithm,
    signing: props.signing ?? DEFAULTS.signing,
    multiRegion,
    now,
    publishWaitSeconds: NATIVE_AUTHORIZER_KEY_CACHE.toSeconds() + jwksMaxAge.toSeconds(),
    retireWaitSeconds: longestAccessTokenTtl(props.clients).toSeconds() + clockMargin,
  }
}

/** The error synth fails with when the ledger refuses a key change. */
export function unsafeKeyChangeError(stackName: string, problems: readonly string[]): Error {
  return new SigningKeyError(
    [
      `Unsafe signing-key change for stack ${stackName}:`,
      ...problems.map((problem) => `  - ${problem}`),
      'See docs/operations.md "Key rotation". If the change is deliberate (say a compromised key must go now),',
      'pass -c unsafeKeyChangeReason="<why>": tokens signed by a removed key stop verifying at once.',
    ].join('\n'),
  )
}

/**
 * The ledger's plan for a change of the service's signing keys: `props` as the construct takes
 * them (`signingKeys` absent is the construct's default key). Nothing is written until the
 * plan's `write()`, after a clean synth; pass its `transitionKeys` and `modes` to the construct
 * as `transitionSigningKeys` and `signingKeyModes`.
 */
export function planSigningKeyChange(
  path: string,
  stackName: string,
  props: Parameters<typeof keyChangeRules>[0] & Pick<TokenServiceProps, 'signingKeys'>,
  now: Date,
  { multiRegion = false }: { readonly multiRegion?: boolean } = {},
): KeyLedgerPlan {
  return planKeyLedger(
    path,
    stackName,
    props.signingKeys ?? DEFAULTS.signingKeys,
    keyChangeRules(props, now, multiRegion),
  )
}
