import { Annotations, type App, Validations } from 'aws-cdk-lib'
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag'
import type { Construct } from 'constructs'
import type { ClientConfig } from '../functions/core/clients.js'

/**
 * The clients that still look like local mode's demo ones: an origin on
 * localhost, or an audience on an example domain (RFC 2606).
 */
export function demoClientsIn(clients: readonly ClientConfig[]): string[] {
  const local = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/
  const example = /^https?:\/\/([^/]+\.)?example\.(com|org|net)(:\d+)?(\/|$)/
  return clients
    .filter(
      (client) =>
        (client.allowed_origins ?? []).some((origin) => local.test(origin)) ||
        example.test(client.audience),
    )
    .map((client) => client.client_id)
}

/**
 * A warning on the stack while it deploys demo clients: `cdk synth --strict` and
 * `cdk deploy --strict` refuse it.
 */
export function warnOnDemoClients(stack: Construct, clients: readonly ClientConfig[]): void {
  const demo = demoClientsIn(clients)
  if (demo.length === 0) return
  Annotations.of(stack).addWarningV2(
    'token-service:demo-clients',
    `clients ${demo.join(', ')} look like the demo clients (a localhost origin or an example.com audience): replace them in token-service.config.ts before deploying (cdk deploy --strict refuses this stack)`,
  )
}

/**
 * A warning on the stack while the config leaves `account` or `region` unset: the stack
 * would deploy wherever the CLI's credentials point, so `cdk deploy --strict` refuses it.
 */
export function warnOnUnpinnedEnvironment(
  stack: Construct,
  config: { readonly account?: string; readonly region?: string },
): void {
  const unset = (['account', 'region'] as const).filter((key) => config[key] === undefined)
  if (unset.length === 0) return
  Annotations.of(stack).addWarningV2(
    'token-service:unpinned-environment',
    `${unset.join(' and ')} ${unset.length > 1 ? 'are' : 'is'} not set in the config: the stack deploys to whatever account and region the CLI's credentials name. Set them in token-service.config.ts (cdk deploy --strict refuses this stack)`,
  )
}

/** cdk-nag 3: the AWS Solutions and Serverless packs run as policy-validation plugins. */
export function addNagPacks(app: App): void {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app))
}
