/**
 * Builds every function's bundle ahead of synth, with the options NodejsFunction
 * bundles with (lib/bundling.ts), into `<folder>/<function>/index.mjs`: what
 * `PREBUILT_BUNDLES_CONTEXT` points a synth at. Build-time only (it imports esbuild).
 */
import { createHash } from 'node:crypto'
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build, version as esbuildVersion } from 'esbuild'
import { LAMBDA_FUNCTIONS } from '../functions/routes.js'
import type { LambdaName } from '../functions/settings.js'
import { BUNDLE_FILE, esbuildOptions, LAMBDA_BUNDLING } from './bundling.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/**
 * A hash of everything a bundle is made of: the functions' sources, the lockfile (the
 * dependencies' versions), esbuild's version and the bundling options.
 */
export async function bundleInputsHash(): Promise<string> {
  const hash = createHash('sha256')
  hash.update(`esbuild ${esbuildVersion}\n${JSON.stringify(LAMBDA_BUNDLING)}\n`)
  const files = [
    ...(await readdir(join(ROOT, 'functions'), { recursive: true }))
      .map((file) => join('functions', file))
      .filter((file) => file.endsWith('.ts')),
    'package-lock.json',
    'lib/bundling.ts',
  ].sort()
  for (const file of files) {
    hash.update(`${file}\n`)
    hash.update(await readFile(join(ROOT, file)))
  }
  return hash.digest('hex').slice(0, 32)
}

export interface BuiltBundles {
  /** `<folder>/<function>/index.mjs`: the value for `PREBUILT_BUNDLES_CONTEXT`. */
  readonly folder: string
  /** esbuild's metafile of each bundle (which inputs it holds). */
  readonly metafiles: string
}

/**
 * Builds the bundles into `cache/<hash of their inputs>`, unless a previous build of the
 * same inputs is there: written to a temporary folder first, then renamed, so that a
 * build stopped half-way is never taken for a finished one.
 */
export async function buildBundles(cache: string): Promise<BuiltBundles> {
  const target = join(cache, await bundleInputsHash())
  const built = { folder: join(target, 'functions'), metafiles: join(target, 'meta') }
  if (await readFile(join(target, 'done')).catch(() => undefined)) return built
  const temporary = `${target}.${process.pid}.tmp`
  await rm(temporary, { recursive: true, force: true })
  await buildBundlesInto(join(temporary, 'functions'), join(temporary, 'meta'))
  await writeFile(join(temporary, 'done'), `${relative(ROOT, target)}\n`)
  await rm(target, { recursive: true, force: true })
  await rename(temporary, target)
  return built
}

/** Builds every bundle into `folder/<function>/index.mjs`, and its metafile into `metafiles`. */
export async function buildBundlesInto(folder: string, metafiles?: string): Promise<void> {
  await Promise.all(
    (Object.keys(LAMBDA_FUNCTIONS) as LambdaName[]).map(async (name) => {
      const result = await build({
        ...esbuildOptions(LAMBDA_FUNCTIONS[name].entry),
        absWorkingDir: ROOT,
        outfile: join(folder, name, BUNDLE_FILE),
        metafile: true,
        logLevel: 'silent',
      })
      if (!metafiles) return
      await mkdir(metafiles, { recursive: true })
      await writeFile(join(metafiles, `${name}.json`), JSON.stringify(result.metafile))
    }),
  )
}
