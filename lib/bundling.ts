import type { BuildOptions } from 'esbuild'

/**
 * How every Lambda function is bundled: one minified ESM file with the AWS SDK
 * inside (tree-shaken, it starts faster than the runtime's copy), class and
 * function names kept (error names in the logs), no source maps (Node's
 * `--enable-source-maps` parses them at every cold start: docs/benchmarks.md),
 * and the Lambda-only credential provider (functions/adapters/lambda-credentials.ts).
 * lib/token-function.ts hands these to NodejsFunction; the benchmark and the stack
 * suite build with the same values.
 */
export const LAMBDA_BUNDLING = {
  target: 'node24',
  minify: true,
  keepNames: true,
  sourceMap: false,
  mainFields: ['module', 'main'],
  /** Lets CommonJS dependencies `require` Node built-ins from the ESM bundle. */
  banner:
    "import { createRequire as __tsCreateRequire } from 'node:module';const require = __tsCreateRequire(import.meta.url);",
  /** Relative to the project root, where esbuild runs. */
  alias: {
    '@aws-sdk/credential-provider-node': './functions/adapters/lambda-credentials.ts',
  },
} as const

/** The same bundle through esbuild's API (`entry` relative to the project root). */
export function esbuildOptions(entry: string): BuildOptions {
  return {
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: LAMBDA_BUNDLING.target,
    minify: LAMBDA_BUNDLING.minify,
    keepNames: LAMBDA_BUNDLING.keepNames,
    sourcemap: LAMBDA_BUNDLING.sourceMap,
    mainFields: [...LAMBDA_BUNDLING.mainFields],
    banner: { js: LAMBDA_BUNDLING.banner },
    alias: { ...LAMBDA_BUNDLING.alias },
  }
}
