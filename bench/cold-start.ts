/**
 * `npm run bench` (part): each Lambda function's bundle, built with the stack's own
 * esbuild options (lib/bundling.ts), its size, and its cold import time in fresh
 * node processes, side by side with a bare `node -e 0` measured in the same rounds.
 *
 * - `import`: the time `await import(bundle)` takes inside a fresh process (the
 *   module's own load and init, without node's start-up).
 * - `over bare`: the wall time of a fresh process that imports the bundle and exits,
 *   minus that of `node -e 0`; both medians of the same interleaved rounds.
 *
 * The machine is shared: compare within one run, not across runs.
 */

import { spawnSync } from 'node:child_process'
import { mkdtempSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { build } from 'esbuild'
import { LAMBDA_FUNCTIONS } from '../functions/routes.js'
import { esbuildOptions } from '../lib/bundling.js'

const ROUNDS = Number(process.env.COLD_START_ROUNDS ?? 9)

/** What the template gives the functions, with AWS endpoints nobody answers on. */
const ENV: Record<string, string> = {
  PATH: process.env.PATH ?? '',
  AWS_REGION: 'eu-west-1',
  AWS_ACCESS_KEY_ID: 'bench',
  AWS_SECRET_ACCESS_KEY: 'bench',
  AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
  ISSUER: 'https://auth.bench.example',
  CLIENTS: JSON.stringify([
    { client_id: 'bench', type: 'native', audience: 'https://api.bench.example' },
  ]),
  TABLE_NAME: 'bench',
  SIGNING_KEY_ID: 'arn:aws:kms:eu-west-1:000000000000:key/bench',
  GRACE_KEY_ID: 'arn:aws:kms:eu-west-1:000000000000:key/bench-grace',
  EVENT_BUS_NAME: 'bench',
  SIGNING_ALG: 'RS256',
  AUTHORIZER_AUDIENCES: 'https://api.bench.example',
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
}

function timed(args: string[]): { wall: number; inner: number } {
  const start = performance.now()
  const child = spawnSync(process.execPath, args, { env: ENV, encoding: 'utf8' })
  const wall = performance.now() - start
  if (child.status !== 0) throw new Error(`${args.join(' ')} failed: ${child.stderr}`)
  return { wall, inner: Number(child.stdout || 0) }
}

export interface ColdStart {
  readonly name: string
  readonly kib: number
  readonly importMs: number
  readonly overBareMs: number
}

/** Builds every function and measures it; prints one table. */
export async function coldStart(): Promise<ColdStart[]> {
  const outdir = mkdtempSync(join(tmpdir(), 'cold-start-'))
  const bundles: { name: string; file: string }[] = []
  for (const [name, entry] of Object.entries(LAMBDA_FUNCTIONS)) {
    const file = join(outdir, name, 'index.mjs')
    await build({ ...esbuildOptions(entry.entry), outfile: file, logLevel: 'silent' })
    bundles.push({ name, file })
  }
  const bare: number[] = []
  const runs = new Map<string, { wall: number[]; inner: number[] }>()
  for (let round = 0; round < ROUNDS; round++) {
    bare.push(timed(['-e', '0']).wall)
    for (const { name, file } of bundles) {
      const script = `const t = performance.now(); await import(${JSON.stringify(pathToFileURL(file).href)}); process.stdout.write(String(performance.now() - t)); process.exit(0)`
      const { wall, inner } = timed(['--input-type=module', '-e', script])
      const run = runs.get(name) ?? { wall: [], inner: [] }
      run.wall.push(wall)
      run.inner.push(inner)
      runs.set(name, run)
    }
  }
  const bareMs = median(bare)
  const results = bundles.map(({ name, file }) => {
    const run = runs.get(name) ?? { wall: [], inner: [] }
    return {
      name,
      kib: statSync(file).size / 1024,
      importMs: median(run.inner),
      overBareMs: median(run.wall) - bareMs,
    }
  })
  console.log(
    `\nCold start per function (esbuild as the stack bundles; median of ${ROUNDS} fresh processes each; bare \`node -e 0\`: ${bareMs.toFixed(1)} ms)`,
  )
  console.log('  function           bundle KiB   import ms   over bare ms')
  for (const r of results) {
    console.log(
      `  ${r.name.padEnd(18)} ${r.kib.toFixed(1).padStart(10)} ${r.importMs.toFixed(1).padStart(11)} ${r.overBareMs.toFixed(1).padStart(14)}`,
    )
  }
  return results
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await coldStart()
