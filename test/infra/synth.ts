import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { App, type CfnResource } from 'aws-cdk-lib'
import { Template } from 'aws-cdk-lib/assertions'
import type { IConstruct } from 'constructs'
import type { ClientConfig } from '../../functions/core/clients.js'
import { TokenServiceStack, type TokenServiceStackProps } from '../../lib/token-service-stack.js'

export type Resource = {
  Type: string
  Properties: Record<string, unknown>
  DeletionPolicy?: string
  DependsOn?: string[]
}

/** The clients the CDK app deploys by default (local mode's demo clients). */
export const demoClients = JSON.parse(readFileSync('clients.local.json', 'utf8')) as ClientConfig[]

/**
 * Fixed clients for template tests: a native one, and a cookie-mode SPA on its own origin.
 * DPoP is off, so that these tests see the authorizer's answer cache, which DPoP turns
 * off (test/infra/dpop.test.ts covers the stack with DPoP clients).
 */
export const testClients: ClientConfig[] = [
  {
    client_id: 'native',
    type: 'native',
    audience: 'https://api.example.com',
    access_token_ttl_seconds: 900,
    dpop: 'disabled',
  },
  {
    client_id: 'spa',
    type: 'spa',
    audience: 'https://api.example.com',
    allowed_origins: ['https://app.example.com'],
    access_token_ttl_seconds: 600,
    cookie_mode: true,
    dpop: 'disabled',
  },
]

/**
 * An app for template tests: bundling skipped (the supported `aws:cdk:bundling-stacks`
 * context; one test in app.test.ts bundles for real) and CDK's built-in CloudFormation
 * validation off (the real synth runs it), so that each synth takes a second or two.
 */
export function testApp(context: Record<string, unknown> = {}): App {
  return new App({
    outdir: mkdtempSync(join(tmpdir(), 'token-service-cdk-')),
    builtinCloudFormationValidation: false,
    context: { 'aws:cdk:bundling-stacks': [], ...context },
  })
}

export interface Synthesized {
  readonly stack: TokenServiceStack
  readonly template: Template
  readonly resources: Record<string, Resource>
  /** The logical id of a construct's CloudFormation resource (its `defaultChild`, or itself). */
  readonly logicalId: (construct: IConstruct) => string
}

export function synth(
  props: Partial<TokenServiceStackProps> = {},
  id = 'TestTokenService',
): Synthesized {
  const stack = new TokenServiceStack(testApp(), id, { clients: testClients, ...props })
  const template = Template.fromStack(stack)
  const resources = template.toJSON().Resources as Record<string, Resource>
  const logicalId = (construct: IConstruct) =>
    stack.getLogicalId((construct.node.defaultChild ?? construct) as CfnResource)
  return { stack, template, resources, logicalId }
}
