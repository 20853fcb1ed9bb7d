/**
 * What `cdk synth` produces, synthesized in-process: the CDK app's own settings
 * (cdk.json's feature flags, the committed token-service.config.ts with `-c`-style
 * overrides, read by `readAppSettings` as bin/app.ts does), each
 * configuration a stack of one App. The functions' code is the bundles
 * test/global-setup.ts built once for the whole run, with NodejsFunction's
 * options (lib/build-bundles.ts): every stack of every file points at the same
 * assets, and no file bundles again.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { App } from 'aws-cdk-lib'
import { inject } from 'vitest'
import { buildStacks } from '../../lib/app-stacks.js'
import { PREBUILT_BUNDLES_CONTEXT } from '../../lib/bundling.js'
import { readAppSettings } from '../../lib/config.js'
import { TokenServiceStack, type TokenServiceStackProps } from '../../lib/token-service-stack.js'
import committed from '../../token-service.config.js'

export interface CfnResource {
  readonly Type: string
  // biome-ignore lint/suspicious/noExplicitAny: CloudFormation properties are read as the template has them
  readonly Properties: Record<string, any>
}

export interface StackTemplate {
  /** The CloudFormation stack name (the same for every step of one deployment). */
  readonly stackName: string
  /** The region the stack is pinned to (`env.region`); unset: the CLI's. */
  readonly region?: string
  readonly resources: Readonly<Record<string, CfnResource>>
  /** The template's Outputs (what another region's stack reads with `Fn::GetStackOutput`). */
  readonly outputs?: Readonly<Record<string, { readonly Value: unknown }>>
  /** The directory in the cloud assembly that holds a function's code. */
  readonly codeDirectory: (functionLogicalId: string) => string
}

export interface Assembly<K extends string> {
  readonly templates: Record<K, StackTemplate>
  /** Deletes the cloud assembly's directory. */
  remove(): void
}

/**
 * Synthesizes one stack per configuration, each given as `-c` context on top of
 * cdk.json's (what `npx cdk synth -c key=value` would read), plus the props
 * bin/app.ts adds from the key ledger (`transitionSigningKeys`).
 */
export function synthesize<K extends string>(
  configurations: Record<K, Record<string, string>>,
  ledgerProps: Partial<
    Record<K, Pick<TokenServiceStackProps, 'transitionSigningKeys' | 'signingKeyModes'>>
  > = {},
): Assembly<K> {
  const cdkJson = JSON.parse(readFileSync('cdk.json', 'utf8')) as {
    context: Record<string, unknown>
  }
  const outdir = mkdtempSync(join(tmpdir(), 'token-service-stack-'))
  const app = new App({
    outdir,
    context: { ...cdkJson.context, [PREBUILT_BUNDLES_CONTEXT]: inject('bundlesDir') },
  })
  for (const [id, context] of Object.entries<Record<string, string>>(configurations)) {
    // The key ledger is bin/app.ts's gate before synth; what it adds to the props is given here.
    const settings = readAppSettings(new App({ context: { ...cdkJson.context, ...context } }), {
      path: 'token-service.config.ts',
      config: committed,
    })
    new TokenServiceStack(app, id, {
      ...settings.props,
      ...ledgerProps[id as K],
      stackName: settings.stackName,
    })
  }
  const assembly = app.synth()
  const templates = {} as Record<K, StackTemplate>
  for (const id of Object.keys(configurations) as K[]) {
    templates[id] = templateOf(assembly, outdir, id)
  }
  return { templates, remove: () => rmSync(outdir, { recursive: true, force: true }) }
}

/**
 * The app of one configuration with `regions`, as bin/app.ts builds it (lib/app-stacks.ts
 * `buildStacks`, no key ledger: every listed key multi-Region): one stack per region, the
 * primary first, keyed by region.
 */
export function synthesizeRegions(
  context: Record<string, string>,
): Assembly<string> & { readonly regions: readonly string[] } {
  const cdkJson = JSON.parse(readFileSync('cdk.json', 'utf8')) as {
    context: Record<string, unknown>
  }
  const outdir = mkdtempSync(join(tmpdir(), 'token-service-stack-'))
  const app = new App({
    outdir,
    context: { ...cdkJson.context, [PREBUILT_BUNDLES_CONTEXT]: inject('bundlesDir') },
  })
  const settings = readAppSettings(new App({ context: { ...cdkJson.context, ...context } }), {
    path: 'token-service.config.ts',
    config: committed,
  })
  const { stacks, waiting } = buildStacks(app, settings)
  if (waiting.length > 0) throw new Error(`regions: ${waiting.join('; ')}`)
  const assembly = app.synth()
  const templates: Record<string, StackTemplate> = {}
  for (const stack of stacks)
    templates[stack.region] = templateOf(assembly, outdir, stack.artifactId)
  return {
    templates,
    regions: stacks.map((stack) => stack.region),
    remove: () => rmSync(outdir, { recursive: true, force: true }),
  }
}

function templateOf(
  assembly: ReturnType<App['synth']>,
  outdir: string,
  artifactId: string,
): StackTemplate {
  const artifact = assembly.getStackArtifact(artifactId)
  const manifest = JSON.parse(readFileSync(join(outdir, `${artifactId}.assets.json`), 'utf8')) as {
    files: Record<string, { source: { path: string } }>
  }
  const resources = artifact.template.Resources as Record<string, CfnResource>
  const region = artifact.environment.region
  return {
    stackName: artifact.stackName,
    ...(region !== 'unknown-region' && { region }),
    resources,
    outputs: artifact.template.Outputs ?? {},
    codeDirectory(logicalId) {
      const key = String(resources[logicalId]?.Properties.Code?.S3Key)
      const asset = manifest.files[key.replace(/\.zip$/, '')]
      if (!asset) throw new Error(`${logicalId}: no asset for code ${key}`)
      return join(outdir, asset.source.path)
    },
  }
}

/** The resources of one type: logical id and properties (intrinsics unresolved). */
export const resourcesOf = (
  template: StackTemplate,
  type: string,
): [string, CfnResource['Properties']][] =>
  Object.entries(template.resources)
    .filter(([, resource]) => resource.Type === type)
    .map(([id, resource]) => [id, resource.Properties])
