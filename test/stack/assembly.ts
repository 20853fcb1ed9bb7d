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
  readonly resources: Readonly<Record<string, CfnResource>>
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
    const artifact = assembly.getStackArtifact(id)
    const manifest = JSON.parse(readFileSync(join(outdir, `${id}.assets.json`), 'utf8')) as {
      files: Record<string, { source: { path: string } }>
    }
    const resources = artifact.template.Resources as Record<string, CfnResource>
    templates[id] = {
      stackName: artifact.stackName,
      resources,
      codeDirectory(logicalId) {
        const key = String(resources[logicalId]?.Properties.Code?.S3Key)
        const asset = manifest.files[key.replace(/\.zip$/, '')]
        if (!asset) throw new Error(`${logicalId}: no asset for code ${key}`)
        return join(outdir, asset.source.path)
      },
    }
  }
  return { templates, remove: () => rmSync(outdir, { recursive: true, force: true }) }
}

/** The resources of one type: logical id and properties (intrinsics unresolved). */
export const resourcesOf = (
  template: StackTemplate,
  type: string,
): [string, CfnResource['Properties']][] =>
  Object.entries(template.resources)
    .filter(([, resource]) => resource.Type === type)
    .map(([id, resource]) => [id, resource.Properties])
