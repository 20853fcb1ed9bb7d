import type { SigningMode } from '@rotating-token-service/cdk'
import type { App } from 'aws-cdk-lib'
import type { AppSettings } from './config.js'
import { TokenServiceStack } from './token-service-stack.js'

/** What the key ledger tells the stacks (lib/signing-keys.ts `KeyLedgerPlan`). */
export interface LedgerFacts {
  readonly transitionKeys: readonly string[]
  readonly modes: Readonly<Record<string, SigningMode>>
  readonly multiRegionKeys: readonly string[]
}

export interface AppStacks {
  /** One stack per region synthesized, the primary first. */
  readonly stacks: readonly TokenServiceStack[]
  /** Why a region's stack was left out of this synth (a step of a migration), one line each. */
  readonly waiting: readonly string[]
}

/**
 * The construct id of a region's stack (what `cdk deploy` names): the primary's is
 * `stackName`, as the stack deployed before `regions` (a construct id reaches some logical
 * ids: keeping it replaces nothing), the others' `<stackName>-<region>`. Each is deployed
 * under the CloudFormation name `stackName` in its own region.
 */
export const regionalStackId = (stackName: string, region: string, primary = false) =>
  primary ? stackName : `${stackName}-${region}`

/**
 * The stacks of the app. One region (no `regions`): one stack, `stackName`, in the CLI's
 * environment, as before. With `regions`: one stack per region, each deployed under the
 * same CloudFormation name `stackName` in its own region (so the key tag, the envelope
 * context and the ledger are one for all, and the primary's stack is the stack deployed
 * before `regions` was set), under the construct ids of `regionalStackId`. The primary (the first region) defines the global table and the
 * multi-Region keys; the others replicate them, and wait (are left out of the synth) while
 * a listed key (KMS or envelope) is single-Region or the table is being moved (`tableMigration`).
 */
export function buildStacks(
  app: App,
  settings: Pick<AppSettings, 'stackName' | 'props' | 'regions' | 'failover'>,
  ledger?: LedgerFacts,
): AppStacks {
  const { stackName, props, regions } = settings
  const keyFacts = ledger && {
    transitionSigningKeys: ledger.transitionKeys,
    signingKeyModes: ledger.modes,
  }
  if (!regions) {
    return {
      stacks: [new TokenServiceStack(app, stackName, { ...props, ...keyFacts })],
      waiting: [],
    }
  }
  // Without a ledger (`signingKeysLock: 'off'`) nothing tells a key's history: every listed
  // key is taken as added with regions.
  const listed = (props.signingKeys ?? [{ id: 'k1', state: 'active' as const }]).map((k) => k.id)
  const multiRegionKeys = ledger?.multiRegionKeys ?? listed
  // The config's account (in the props' env), else the CLI's.
  const account = props.env?.account ?? process.env.CDK_DEFAULT_ACCOUNT
  const stackIn = (region: string, primary?: TokenServiceStack) =>
    new TokenServiceStack(app, regionalStackId(stackName, region, !primary), {
      ...props,
      ...keyFacts,
      stackName,
      env: { region, ...(account && { account }) },
      // The replica keys name their primary key's ARN, an attribute of the primary's stack.
      crossRegionReferences: true,
      regions: {
        all: regions,
        multiRegionKeys,
        failover: settings.failover ?? 'relogin',
        ...(primary && { primaryKeys: primary.service.signingKeys }),
        ...(primary?.service.envelopeSigning?.multiRegionKey && {
          primaryEnvelopeKey: primary.service.envelopeSigning.multiRegionKey,
        }),
      },
    })
  const [first, ...others] = regions as [string, ...string[]]
  const primary = stackIn(first)
  const single = listed.filter((id) => !multiRegionKeys.includes(id))
  const migrating = (props.tableMigration ?? 'none') !== 'none'
  if (single.length > 0 || migrating) {
    const why = migrating
      ? `tableMigration is "${props.tableMigration}"`
      : `keys ${single.join(', ')} are single-Region (added before regions)`
    return {
      stacks: [primary],
      waiting: others.map(
        (region) =>
          `${regionalStackId(stackName, region)}: not synthesized while ${why}; docs/operations.md "Moving to several regions"`,
      ),
    }
  }
  const stacks = [primary]
  for (const region of others) {
    const stack = stackIn(region, primary)
    stack.addStackDependency(primary, 'the global table and the primary keys come first')
    stacks.push(stack)
  }
  return { stacks, waiting: [] }
}
