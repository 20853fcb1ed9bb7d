/**
 * `@rotating-token-service/cdk`: the token service as a CDK construct library. Its Lambda
 * code is this repository's functions/, bundled at build time into the package's assets/
 * (lib/bundling.ts takes them from there): a consumer's synth needs no esbuild.
 *
 * This repository's own app (bin/app.ts, lib/token-service-stack.ts) imports it by this
 * package's name, as a consumer does. In the repository the `rotating-token-service-source`
 * export condition (tsconfig.json, cdk.json, vitest.config.ts) resolves that name to this
 * file, so the app synthesizes the sources as they are edited.
 */
export type { ClientConfig } from '../functions/core/clients.js'
export {
  keyChangeRules,
  planSigningKeyChange,
  unsafeKeyChangeError,
} from '../lib/key-ledger.js'
export {
  type KeyChangeRules,
  type KeyLedgerPlan,
  planKeyLedger,
  SigningKeyError,
  type SigningKeySpec,
  type SigningMode,
} from '../lib/signing-keys.js'
export {
  TokenAuthorizer,
  type TokenAuthorizerProps,
} from '../lib/token-authorizer.js'
export { TokenService, type TokenServiceProps } from '../lib/token-service.js'
export {
  EDGE_WAF_REGION,
  EdgeWafStack,
  EdgeWebAcl,
  type EdgeWebAclProps,
} from '../lib/token-service-edge.js'
