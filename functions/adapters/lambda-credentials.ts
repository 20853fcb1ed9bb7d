import { fromEnv } from '@aws-sdk/credential-provider-env'

/**
 * Stands in for `@aws-sdk/credential-provider-node` in the Lambda bundles
 * (lib/bundling.ts). Lambda always puts the function role's credentials in the
 * environment, which is the first place the SDK's default chain looks; the rest
 * of that chain (SSO, INI files, IMDS, web identity, and the STS and SSO
 * clients they bring) is 130 KiB that every cold start would parse for nothing.
 */
export const defaultProvider = (init?: Parameters<typeof fromEnv>[0]) => fromEnv(init)
