import { Template } from 'aws-cdk-lib/assertions'
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { addNagPacks } from '../../lib/app-context.js'
import { readAppSettings } from '../../lib/config.js'
import { CANARY_CODE } from '../../lib/token-service-canary.js'
import { TokenServiceStack } from '../../lib/token-service-stack.js'
import { type Resource, synth, testApp, testClients } from './synth.js'

const ISSUER = 'https://auth.example.test'
/** The canary's code as Synthetics loads it: a CommonJS module, with this process's globals. */
const check = (() => {
  const module = { exports: {} as { handler: () => Promise<string> } }
  new Function('module', 'exports', CANARY_CODE)(module, module.exports)
  return module.exports
})()

/** A fetch that serves `documents` by URL, 404 for anything else. */
function serve(documents: Record<string, unknown>) {
  vi.stubGlobal('fetch', async (url: string) =>
    url in documents
      ? new Response(JSON.stringify(documents[url]), { status: 200 })
      : new Response('{}', { status: 404 }),
  )
}
const good = {
  [`${ISSUER}/.well-known/openid-configuration`]: {
    issuer: ISSUER,
    jwks_uri: `${ISSUER}/.well-known/jwks.json`,
  },
  [`${ISSUER}/.well-known/jwks.json`]: { keys: [{ kid: 'k1', kty: 'RSA', alg: 'RS256' }] },
}

describe('the discovery canary, off by default', () => {
  afterEach(() => {
    vi.unstubAllGlobals()
    vi.unstubAllEnvs()
  })

  it('passes when discovery names the issuer and its JWKS, and the JWKS holds keys', async () => {
    vi.stubEnv('ISSUER', ISSUER)
    serve(good)
    await expect(check.handler()).resolves.toBe('ok')
  })

  it('fails when discovery is not served, names another issuer, or the JWKS is empty', async () => {
    vi.stubEnv('ISSUER', ISSUER)
    serve({})
    await expect(check.handler()).rejects.toThrow(/openid-configuration answered 404/)
    const discovery = good[`${ISSUER}/.well-known/openid-configuration`]
    serve({
      ...good,
      [`${ISSUER}/.well-known/openid-configuration`]: {
        ...discovery,
        issuer: 'https://x.example.test',
      },
    })
    await expect(check.handler()).rejects.toThrow(/names the issuer https:\/\/x\.example\.test/)
    serve({ ...good, [`${ISSUER}/.well-known/jwks.json`]: { keys: [] } })
    await expect(check.handler()).rejects.toThrow(/holds no key/)
  })

  it('runs inline at the issuer on the chosen schedule, and alarms when it fails or does not run, two periods running', () => {
    expect(synth().stack.service.canary).toBeUndefined()
    const { stack, template, resources, logicalId } = synth({ canary: { everyMinutes: 5 } })
    const canary = stack.service.canary
    if (!canary) throw new Error('no canary')
    const props = resources[logicalId(canary)]?.Properties as Record<string, unknown>
    expect(props.Code).toMatchObject({ Handler: 'index.handler', Script: CANARY_CODE })
    expect(props.Schedule).toMatchObject({ Expression: 'rate(5 minutes)' })
    expect(stack.resolve(stack.service.issuer)).toEqual(
      (props.RunConfig as { EnvironmentVariables: { ISSUER: unknown } }).EnvironmentVariables
        .ISSUER,
    )
    const alarm = stack.service.monitoring.alarms.discoveryCanary
    if (!alarm) throw new Error('no canary alarm')
    expect(resources[logicalId(alarm)]?.Properties).toMatchObject({
      MetricName: 'SuccessPercent',
      Namespace: 'CloudWatchSynthetics',
      Statistic: 'Minimum',
      Period: 300,
      Threshold: 100,
      EvaluationPeriods: 2,
      ComparisonOperator: 'LessThanThreshold',
      TreatMissingData: 'breaching',
    })
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: { Rules: [{ ExpirationInDays: 30, Status: 'Enabled' }] },
    })
    // A canary every 15 minutes: periods of 15, so that none is empty.
    const rare = synth({ canary: { everyMinutes: 15 } })
    const rareAlarm = rare.stack.service.monitoring.alarms.discoveryCanary
    expect((rare.resources[rare.logicalId(rareAlarm as never)] as Resource).Properties.Period).toBe(
      900,
    )
  })

  it('refuses a schedule out of bounds, naming the key', () => {
    expect(() =>
      readAppSettings(testApp(), {
        path: 'token-service.config.ts',
        config: { clients: testClients, canary: { everyMinutes: 0 } },
      }),
    ).toThrow(/canary\.everyMinutes must be an integer from 1 to 60, got 0/)
  })

  it('passes cdk-nag with the canary on', () => {
    const app = testApp()
    const stack = new TokenServiceStack(app, 'Canaried', {
      clients: testClients,
      canary: { everyMinutes: 5 },
    })
    addNagPacks(app)
    Template.fromStack(stack)
    for (const pack of [new AwsSolutionsChecks(), new ServerlessChecks()]) {
      const report = pack.validateScope(stack)
      expect(
        report.violations.map(
          (v) => `${v.severity} ${v.ruleName} ${v.violatingResources[0]?.constructPath}`,
        ),
      ).toEqual([])
    }
    expect(() => app.synth()).not.toThrow()
  })
})
