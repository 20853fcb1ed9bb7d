/**
 * `@rotating-token-service/cdk`: the token service as a CDK construct library. Its Lambda
 * code is this repository's functions/, bundled at build time into the package's assets/
 * (lib/bundling.ts takes them from there): a consumer's synth needs no esbuild.
 */
export type { ClientConfig } from '../functions/core/clients.js'
export type { SigningKeySpec } from '../lib/signing-keys.js'
export {
  TokenAuthorizer,
  type TokenAuthorizerProps,
} from '../lib/token-authorizer.js'
export { TokenService, type TokenServiceProps } from '../lib/token-service.js'
export { EdgeWebAcl, type EdgeWebAclProps } from '../lib/token-service-edge.js'
