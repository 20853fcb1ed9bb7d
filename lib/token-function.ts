import { fileURLToPath } from 'node:url'
import { Duration, type RemovalPolicy, Validations } from 'aws-cdk-lib'
import * as iam from 'aws-cdk-lib/aws-iam'
import * as lambda from 'aws-cdk-lib/aws-lambda'
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs'
import * as logs from 'aws-cdk-lib/aws-logs'
import { Construct } from 'constructs'
import { LAMBDA_FUNCTIONS, STREAM_FUNCTIONS } from '../functions/routes.js'
import {
  type IntegerSetting,
  type LambdaName,
  outOfBounds,
  SETTINGS,
  type SettingName,
  settingsOf,
} from '../functions/settings.js'
import { LAMBDA_BUNDLING, prebuiltBundle } from './bundling.js'
import { DEFAULTS } from './defaults.js'

const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url))

/** Lambda refuses more than 4 KB of environment variables (names and values). */
export const MAX_ENVIRONMENT_BYTES = 4096

/** Set on every function: Powertools, and the SDK's Lambda-friendly defaults. */
const COMMON_ENVIRONMENT = {
  POWERTOOLS_SERVICE_NAME: 'token-service',
  POWERTOOLS_METRICS_NAMESPACE: 'TokenService',
  POWERTOOLS_LOG_LEVEL: DEFAULTS.logLevel,
  // The event holds tokens and passwords: never log it.
  POWERTOOLS_LOGGER_LOG_EVENT: 'false',
  // Successes log at debug: only this share of the invocations writes them (TokenService
  // sets the config's `logSamplePercent`).
  POWERTOOLS_LOGGER_SAMPLE_RATE: String(DEFAULTS.logSamplePercent / 100),
}

/**
 * The environment of one function: exactly the settings it reads
 * (functions/settings.ts) among `values`, and the common ones; refused at synth
 * above Lambda's 4 KB, naming the largest variables.
 */
export function functionEnvironment(
  name: LambdaName,
  values: Partial<Record<SettingName, string>>,
): Record<string, string> {
  const environment: Record<string, string> = {}
  for (const setting of settingsOf(name)) {
    const value = values[setting]
    // Empty or unset, a setting takes its default: no need to spend the 4 KB.
    if (value !== undefined && value !== '') environment[setting] = value
  }
  const all = { ...environment, ...COMMON_ENVIRONMENT }
  assertEnvironmentSize(name, all)
  return all
}

/**
 * A numeric setting as its variable's value, refused at synth (naming `prop` and the
 * variable) outside the bounds that functions/config.ts accepts at cold start.
 */
export function rangedSetting(prop: string, variable: IntegerSetting, value: number): string {
  const { min, max } = SETTINGS[variable]
  if (outOfBounds(variable, value)) {
    throw new Error(
      `${prop} must be an integer from ${min} to ${max} (${variable}), got ${String(value)}`,
    )
  }
  return String(value)
}

/** Fails at synth, naming the largest variables, where Lambda would fail the deploy. */
export function assertEnvironmentSize(name: string, environment: Record<string, string>): void {
  const size = (key: string) => Buffer.byteLength(key) + Buffer.byteLength(environment[key] ?? '')
  const total = Object.keys(environment).reduce((sum, key) => sum + size(key), 0)
  if (total <= MAX_ENVIRONMENT_BYTES) return
  const largest = Object.keys(environment)
    .sort((a, b) => size(b) - size(a))
    .slice(0, 3)
    .map((key) => `${key} (${size(key)} bytes)`)
  throw new Error(
    `TokenService: the ${name} function's environment takes ${total} bytes; Lambda allows ${MAX_ENVIRONMENT_BYTES}. Largest: ${largest.join(', ')}`,
  )
}

export interface TokenFunctionProps {
  /** Which function of functions/routes.ts: its entry, memory and timeout. */
  readonly name: LambdaName
  readonly environment: Record<string, string>
  /** @default DEFAULTS.logRetention */
  readonly logRetention?: logs.RetentionDays
  /** Of the log group. @default DEFAULTS.removalPolicy */
  readonly removalPolicy?: RemovalPolicy
}

/**
 * One function of functions/routes.ts as a Lambda function: bundled by esbuild
 * (lib/bundling.ts) at synth, or prebuilt with the same options, arm64, X-Ray active, its own log group, and its own
 * role that starts with nothing but writing to that log group.
 */
export class TokenFunction extends Construct {
  public readonly function: lambda.Function
  public readonly role: iam.Role
  public readonly logGroup: logs.LogGroup
  /** Its timeout (functions/routes.ts): the near-timeout alarm compares its p99 with it. */
  public readonly timeout: Duration

  constructor(scope: Construct, id: string, props: TokenFunctionProps) {
    super(scope, id)
    const spec = LAMBDA_FUNCTIONS[props.name]
    this.timeout = Duration.seconds(spec.timeoutSeconds)
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? DEFAULTS.logRetention,
      removalPolicy: props.removalPolicy ?? DEFAULTS.removalPolicy,
    })
    // Its own role instead of AWSLambdaBasicExecutionRole, which may write to any log group.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Runs the ${props.name} function (${spec.purpose})`,
    })
    // Lambda names the log streams, hence the log group's `:*` ARN.
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    )
    const common = {
      description: `Token service: ${spec.purpose}`,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: spec.memoryMiB,
      timeout: this.timeout,
      role: this.role,
      logGroup: this.logGroup,
      tracing: lambda.Tracing.ACTIVE,
      environment: props.environment,
    } satisfies Partial<lambda.FunctionProps>
    const prebuilt = prebuiltBundle(this, props.name)
    this.function = prebuilt
      ? // Built ahead with the same options (lib/build-bundles.ts): the same code, no esbuild here.
        new lambda.Function(this, 'Function', {
          ...common,
          code: lambda.Code.fromAsset(prebuilt),
          handler: 'index.handler',
        })
      : new NodejsFunction(this, 'Function', {
          ...common,
          entry: `${PROJECT_ROOT}${spec.entry}`,
          handler: 'handler',
          projectRoot: PROJECT_ROOT,
          depsLockFilePath: `${PROJECT_ROOT}package-lock.json`,
          bundling: {
            format: OutputFormat.ESM,
            target: LAMBDA_BUNDLING.target,
            minify: LAMBDA_BUNDLING.minify,
            keepNames: LAMBDA_BUNDLING.keepNames,
            sourceMap: LAMBDA_BUNDLING.sourceMap,
            mainFields: [...LAMBDA_BUNDLING.mainFields],
            banner: LAMBDA_BUNDLING.banner,
            esbuildArgs: Object.fromEntries(
              Object.entries(LAMBDA_BUNDLING.alias).map(([from, to]) => [
                '--alias',
                `${from}=${to}`,
              ]),
            ),
            // Bundle the AWS SDK too: one tree-shaken file starts faster than the runtime's copy.
            externalModules: [],
          },
        })
    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'X-Ray tracing only: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions, so AWS requires "*". Every other statement names its resources.',
    })
    Validations.of(this.function).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason: STREAM_FUNCTIONS.includes(props.name)
        ? 'Invoked by its DynamoDB Streams event source mapping, whose on-failure destination is the dead-letter queue. A function dead-letter queue serves asynchronous invocations only.'
        : 'Invoked synchronously by API Gateway only: the caller gets the error and there is no event to keep. A dead-letter queue serves asynchronous invocations.',
    })
  }

  /**
   * The stack's logging and tracing: the share of invocations that log at debug, and
   * tracing on (active, SDK clients traced) or off (no trace, no subsegment).
   */
  observe({ logSampleRate, tracing }: { logSampleRate: string; tracing: boolean }): void {
    this.function.addEnvironment('POWERTOOLS_LOGGER_SAMPLE_RATE', logSampleRate)
    if (!tracing) {
      this.function.addEnvironment('POWERTOOLS_TRACE_ENABLED', 'false')
      const cfn = this.function.node.defaultChild as lambda.CfnFunction
      cfn.tracingConfig = { mode: lambda.Tracing.PASS_THROUGH }
      Validations.of(this.function).acknowledge({
        id: 'Serverless-LambdaTracing',
        reason:
          'Tracing is off by the config (`tracing: false`): at volume X-Ray costs about $5 per million traces, and the metrics, alarms and sampled logs remain (docs/operations.md "Logs and tracing").',
      })
    }
  }

  /**
   * Reserves `concurrency` executions for this function: guaranteed to it and its ceiling.
   * Nothing when undefined (the account's unreserved pool).
   */
  reserve(concurrency: number | undefined): void {
    if (concurrency === undefined) return
    const cfn = this.function.node.defaultChild as lambda.CfnFunction
    cfn.reservedConcurrentExecutions = concurrency
  }

  /** Allows `actions` on exactly `resources`, on this function's role, under `conditions` if any. */
  allow(
    actions: readonly string[],
    resources: readonly string[],
    conditions?: Record<string, Record<string, string | readonly string[]>>,
  ): void {
    if (actions.length === 0) return
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: [...actions],
        resources: [...resources],
        ...(conditions && { conditions }),
      }),
    )
  }
}
