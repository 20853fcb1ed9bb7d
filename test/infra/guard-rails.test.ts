import { RemovalPolicy } from 'aws-cdk-lib'
import { Annotations, Match } from 'aws-cdk-lib/assertions'
import { describe, expect, it } from 'vitest'
import { warnOnUnpinnedEnvironment } from '../../lib/app-context.js'
import { readAppSettings } from '../../lib/config.js'
import { TokenServiceStack } from '../../lib/token-service-stack.js'
import { synth, testApp, testClients } from './synth.js'

const read = (config: unknown) =>
  readAppSettings(testApp(), { path: 'token-service.config.ts', config })

describe('guard rails: account and region, termination protection', () => {
  it('deploys to the account and region the config pins, as the stack’s env', () => {
    const settings = read({ clients: testClients, account: '111111111111', region: 'eu-west-1' })
    expect(settings.props.env).toEqual({ account: '111111111111', region: 'eu-west-1' })
    const stack = new TokenServiceStack(testApp(), 'Pinned', settings.props)
    expect(stack.account).toBe('111111111111')
    expect(stack.region).toBe('eu-west-1')
  })

  it('refuses an account or region that is not one, naming the key', () => {
    expect(() => read({ clients: testClients, account: '1234' })).toThrow(
      /account must be a 12-digit AWS account id, got "1234"/,
    )
    expect(() => read({ clients: testClients, region: 'Europe' })).toThrow(
      /region must be an AWS region such as `eu-west-1`, got "Europe"/,
    )
  })

  it('warns while account or region is unset, so that --strict refuses the stack', () => {
    const stack = new TokenServiceStack(testApp(), 'Unpinned', { clients: testClients })
    warnOnUnpinnedEnvironment(stack, { region: 'eu-west-1' })
    const warnings = Annotations.fromStack(stack).findWarning(
      '*',
      Match.stringLikeRegexp('account is not set'),
    )
    expect(warnings).toHaveLength(1)
    const pinned = new TokenServiceStack(testApp(), 'Pinned', { clients: testClients })
    warnOnUnpinnedEnvironment(pinned, { account: '111111111111', region: 'eu-west-1' })
    expect(Annotations.fromStack(pinned).findWarning('*', Match.anyValue())).toEqual([])
  })

  it('turns termination protection on when the stack retains its data, and leaves it off with destroy', () => {
    expect(synth().stack.terminationProtection).toBe(true)
    expect(synth({ removalPolicy: RemovalPolicy.DESTROY }).stack.terminationProtection).toBe(false)
    expect(read({ clients: testClients, removalPolicy: 'retain' }).props.removalPolicy).toBe(
      RemovalPolicy.RETAIN,
    )
  })
})

describe('the near-timeout alarm', () => {
  it('alarms per function when its p99 duration reaches 80% of its timeout, two periods running, and takes another share from the config', () => {
    const { stack, resources, logicalId } = synth()
    const { alarms } = stack.service.monitoring
    const props = (name: string) =>
      resources[logicalId(alarms[name] as never)]?.Properties as Record<string, unknown>
    // login: 10 s timeout; token: 8 s; the authorizer: 5 s (functions/routes.ts).
    expect(props('nearTimeoutLogin')).toMatchObject({
      Threshold: 8000,
      EvaluationPeriods: 2,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    })
    const metric = (name: string) =>
      (props(name)?.Metrics as { MetricStat: Record<string, unknown> }[] | undefined)?.[0]
        ?.MetricStat
    expect(metric('nearTimeoutToken')).toEqual({
      Metric: {
        Dimensions: [
          {
            Name: 'FunctionName',
            Value: { Ref: logicalId(stack.service.functions.token.function) },
          },
        ],
        MetricName: 'Duration',
        Namespace: 'AWS/Lambda',
      },
      Period: 300,
      Stat: 'p99',
    })
    expect(props('nearTimeoutToken')?.Threshold).toBe(6400)
    expect(props('nearTimeoutAuthorizer')?.Threshold).toBe(4000)
    const other = synth({ alarms: { nearTimeoutPercent: 50 } })
    const threshold =
      other.resources[
        other.logicalId(other.stack.service.monitoring.alarms.nearTimeoutLogin as never)
      ]?.Properties.Threshold
    expect(threshold).toBe(5000)
  })

  it('refuses a share outside 50 to 100 percent, naming the key', () => {
    expect(() => read({ clients: testClients, alarms: { nearTimeoutPercent: 20 } })).toThrow(
      /alarms\.nearTimeoutPercent must be an integer from 50 to 100, got 20/,
    )
  })
})

describe('guard rails: reserved concurrency and warm throughput', () => {
  it('reserves the configured concurrency on those functions only, the authorizer and forwarder included', () => {
    const { stack, template } = synth({
      reservedConcurrency: { login: 100, token: 400, authorizer: 300, forwarder: 5 },
    })
    const reserved = (fn: { function: { node: { defaultChild: unknown } } }) =>
      (fn.function.node.defaultChild as { reservedConcurrentExecutions?: number })
        .reservedConcurrentExecutions
    const { functions, tokenAuthorizer, securityEvents } = stack.service
    expect(reserved(functions.login)).toBe(100)
    expect(reserved(functions.token)).toBe(400)
    expect(reserved(functions.revoke)).toBeUndefined()
    expect(reserved(tokenAuthorizer?.handler as never)).toBe(300)
    expect(reserved(securityEvents?.forwarder as never)).toBe(5)
    template.resourcePropertiesCountIs(
      'AWS::Lambda::Function',
      { ReservedConcurrentExecutions: Match.anyValue() },
      4,
    )
    synth().template.resourcePropertiesCountIs(
      'AWS::Lambda::Function',
      { ReservedConcurrentExecutions: Match.anyValue() },
      0,
    )
  })

  it('refuses a reservation out of bounds or for an unknown function, naming the key', () => {
    expect(() => read({ clients: testClients, reservedConcurrency: { login: 0 } })).toThrow(
      /reservedConcurrency\.login must be an integer from 1 to 10000, got 0/,
    )
    expect(() => read({ clients: testClients, reservedConcurrency: { tokens: 5 } })).toThrow(
      /reservedConcurrency\.tokens is not a setting: did you mean token\?/,
    )
  })

  it('sets the table’s warm throughput in place: the table keeps its logical id', () => {
    const plain = synth()
    const warm = synth({
      tableWarmThroughput: { readUnitsPerSecond: 30_000, writeUnitsPerSecond: 12_000 },
    })
    expect(warm.logicalId(warm.stack.service.table)).toBe(
      plain.logicalId(plain.stack.service.table),
    )
    warm.template.hasResourceProperties('AWS::DynamoDB::Table', {
      WarmThroughput: { ReadUnitsPerSecond: 30_000, WriteUnitsPerSecond: 12_000 },
    })
    plain.template.hasResourceProperties('AWS::DynamoDB::Table', {
      WarmThroughput: Match.absent(),
    })
  })

  it('refuses a warm throughput below a new on-demand table’s, naming the key', () => {
    expect(() =>
      read({ clients: testClients, tableWarmThroughput: { writeUnitsPerSecond: 1000 } }),
    ).toThrow(/tableWarmThroughput\.writeUnitsPerSecond must be an integer from 4000 to 10000000/)
  })
})
