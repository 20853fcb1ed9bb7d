/**
 * The DPoP proof algorithms we accept (RFC 9449), as discovery lists them
 * (`dpop_signing_alg_values_supported`) and as a 401's `DPoP` challenge names
 * them (`algs`). `Ed25519` is RFC 9864's name for what `EdDSA` names with
 * `crv: Ed25519` (oauth4webapi signs with it). Apart from core/dpop.ts, so
 * that naming them bundles no verifier.
 */
export const DPOP_ALGORITHMS = ['ES256', 'RS256', 'EdDSA', 'Ed25519'] as const
export type DpopAlgorithm = (typeof DPOP_ALGORITHMS)[number]
