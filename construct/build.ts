/**
 * Builds the construct package: dist/index.js (lib/ bundled with what it imports, aws-cdk-lib
 * and constructs left to the consumer), its type declarations, and every function's bundle in
 * assets/functions (lib/build-bundles.ts, NodejsFunction's options). Run by `npm pack`.
 */
import { execFileSync } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { buildBundlesInto } from '../lib/build-bundles.js'

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))

await rm(here('dist'), { recursive: true, force: true })
await rm(here('assets'), { recursive: true, force: true })
await build({
  entryPoints: [here('index.ts')],
  outfile: here('dist/index.js'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  keepNames: true,
  external: ['aws-cdk-lib', 'aws-cdk-lib/*', 'constructs'],
  logLevel: 'warning',
})
execFileSync(
  process.execPath,
  [here('../node_modules/typescript/bin/tsc'), '-p', here('tsconfig.json')],
  {
    stdio: 'inherit',
  },
)
await buildBundlesInto(here('assets/functions'))
