import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { IConstruct } from 'constructs'
import type { BuildOptions } from 'esbuild'
import type { LambdaName } from '../functions/settings.js'

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

/**
 * The context key naming a folder of prebuilt bundles, `<folder>/<function>/index.mjs`, as
 * lib/build-bundles.ts writes them: each function then takes its code from there
 * (`Code.fromAsset`) instead of bundling its sources at synth. The tests build every
 * bundle once per run this way (test/global-setup.ts).
 */
export const PREBUILT_BUNDLES_CONTEXT = '@rotating-token-service/bundles'

/**
 * Where the construct package (construct/) ships its bundles, next to its built code
 * (`assets/functions`). This repository's sources have no such folder: they bundle.
 */
const PACKAGED_BUNDLES = fileURLToPath(new URL('../assets/functions', import.meta.url))

/**
 * The folder holding `name`'s prebuilt bundle, or undefined to bundle from source: the
 * context's folder, else the package's own. The folder must hold every bundle: a missing
 * one fails synth, naming it.
 */
export function prebuiltBundle(scope: IConstruct, name: LambdaName): string | undefined {
  const folder =
    (scope.node.tryGetContext(PREBUILT_BUNDLES_CONTEXT) as string | undefined) ??
    (existsSync(PACKAGED_BUNDLES) ? PACKAGED_BUNDLES : undefined)
  if (folder === undefined) return undefined
  const path = join(folder, name)
  if (!existsSync(join(path, BUNDLE_FILE))) {
    throw new Error(`${PREBUILT_BUNDLES_CONTEXT}: no ${name}/${BUNDLE_FILE} in ${folder}`)
  }
  return path
}

/** The file of each bundle: NodejsFunction's name for an ESM handler, `index.handler`. */
export const BUNDLE_FILE = 'index.mjs'
