/**
 * The deploy configuration of the token service: edit this file, commit it,
 * then `npx cdk deploy --strict`. Every key, its default and its bounds:
 * docs/configuration.md. `-c KEY=VALUE` overrides one key for one synth
 * (`-c loginBackoff.freeFailures=5`); the key-rotation runbook edits
 * `signingKeys` here (docs/operations.md "Key rotation").
 */

// Local mode's demo clients: localhost origins and an example.com audience.
// Synth warns while they are here, so `cdk deploy --strict` refuses them:
// replace them with your own clients before deploying.
import demoClients from './clients.local.json' with { type: 'json' }
import type { ClientConfig } from './functions/core/clients.js'
import { defineConfig } from './lib/config.js'

export default defineConfig({
  stackName: 'TokenService',
  clients: demoClients as ClientConfig[],
  signingKeys: [{ id: 'k1', state: 'active' }],
  algorithm: 'RS256',
  authorizer: 'lambda',
  strictRevocation: false,
  removalPolicy: 'retain',
  logRetentionDays: 90,
  loginBackoff: { freeFailures: 3, baseSeconds: 1, maxSeconds: 900, failureWindowSeconds: 86_400 },
})
