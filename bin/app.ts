/**
 * The CDK app: `npx cdk synth` / `npx cdk deploy --strict`. The settings come
 * from the committed token-service.config.ts (or `-c config=<file>`), with
 * `-c KEY=VALUE` overrides; lib/config.ts validates them. Synth works offline,
 * with no AWS credentials.
 */
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import {
  planSigningKeyChange,
  SigningKeyError,
  unsafeKeyChangeError,
} from '@rotating-token-service/cdk'
import { App } from 'aws-cdk-lib'
import { addNagPacks, warnOnDemoClients, warnOnUnpinnedEnvironment } from '../lib/app-context.js'
import { buildStacks } from '../lib/app-stacks.js'
import { ConfigFileError, readAppSettings } from '../lib/config.js'

async function main() {
  // No construct stack traces: the CLI prints a construct's source line ("bin/app.ts:49:17")
  // before each of its warnings, which tells the person at the terminal nothing.
  const app = new App({
    stackTraces: false,
    context: { 'aws:cdk:disable-creation-stack-traces': true },
  })
  const path = String(app.node.tryGetContext('config') ?? 'token-service.config.ts')
  const file = (await import(pathToFileURL(resolve(path)).href).catch((error: Error) => {
    throw new ConfigFileError(`${path}: cannot be loaded: ${error.message.split('\n')[0]}`)
  })) as { default?: unknown }
  const settings = readAppSettings(app, { path, config: file.default })

  // The ledger remembers the keys of the last synth, so that synth can refuse a change
  // that would break live tokens (docs/operations.md "Key rotation"). Commit it with the config.
  const ledger =
    settings.keyLedgerPath === undefined
      ? undefined
      : planSigningKeyChange(
          settings.keyLedgerPath,
          settings.stackName,
          settings.props,
          new Date(),
          {
            multiRegion: settings.regions !== undefined,
          },
        )
  if (ledger && ledger.problems.length > 0) {
    if (!settings.unsafeKeyChangeReason)
      throw unsafeKeyChangeError(settings.stackName, ledger.problems)
    process.stderr.write(
      `signing keys: accepting an unsafe change (${settings.unsafeKeyChangeReason}):\n${ledger.problems.map((p) => `  - ${p}`).join('\n')}\n`,
    )
  }

  // One stack, or one per region (lib/app-stacks.ts). The ledger tells them the keys a key
  // change deployed half-way may still (or already) sign with, and how each key signs and
  // whether it is multi-Region (fixed when it was added).
  const { stacks, waiting } = buildStacks(app, settings, ledger)
  for (const stack of stacks) {
    warnOnDemoClients(stack, settings.props.clients)
    // With regions, each stack's region is pinned by the list.
    warnOnUnpinnedEnvironment(stack, {
      ...settings.config,
      ...(settings.regions && { region: stack.region }),
    })
  }
  for (const line of waiting) process.stderr.write(`regions: ${line}\n`)
  addNagPacks(app)
  // Synthesize now, so that the ledger records only a change that synthesized cleanly
  // (cdk-nag included); the CLI reads the assembly this writes.
  app.synth()
  if (ledger?.changed && settings.keyLedgerPath) {
    ledger.write()
    process.stderr.write(`signing keys: recorded in ${settings.keyLedgerPath}; commit it\n`)
  }
}

try {
  await main()
} catch (error) {
  // A mistake in the config file or in -c: one line naming the file and the key, no stack.
  if (!(error instanceof ConfigFileError || error instanceof SigningKeyError)) throw error
  process.stderr.write(`${error.message}\n`)
  process.exit(1)
}
