import { fileURLToPath } from 'node:url'
import { type RemovalPolicy, Validations } from 'aws-cdk-lib'
import * as iam from 'aws-cdk-lib/aws-iam'
import * as lambda from 'aws-cdk-lib/aws-lambda'
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs'
import * as logs from 'aws-cdk-lib/aws-logs'
import { Construct } from 'constructs'
import type { ClientConfig } from '../functions/core/clients.js'
import { DEFAULTS, FUNCTION_SETTINGS, type FunctionName, SETTING_RANGES } from './defaults.js'
import type { SigningAlgorithm } from './signing-keys.js'

const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url))

/** Lets CommonJS dependencies `require` Node built-ins from the ESM bundle. */
const ESM_REQUIRE_BANNER =
  "import { createRequire as __tsCreateRequire } from 'node:module';const require = __tsCreateRequire(import.meta.url);"

/** Lambda refuses more than 4 KB of environment variables; the clients take most of it. */
const MAX_CLIENTS_ENV_BYTES = 3000

/** What every function's `functions/config.ts` reads (see the README's variable table). */
export interface FunctionEnvironmentProps {
  readonly issuer: string
  readonly clients: readonly ClientConfig[]
  readonly algorithm: SigningAlgorithm
  /** ARN of the active KMS key. */
  readonly activeKeyArn: string
  /** ARNs of the retiring keys (published, never signing). */
  readonly retiringKeyArns: readonly string[]
  readonly tableName?: string
}

/** The environment the handlers' `loadConfig()` expects, with the SDK timeouts made explicit. */
export function functionEnvironment(props: FunctionEnvironmentProps): Record<string, string> {
  const clients = JSON.stringify(props.clients)
  if (Buffer.byteLength(clients) > MAX_CLIENTS_ENV_BYTES) {
    throw new Error(
      `clients take ${Buffer.byteLength(clients)} bytes as the CLIENTS variable; Lambda allows 4 KB of variables in all, so keep them under ${MAX_CLIENTS_ENV_BYTES} bytes`,
    )
  }
  return {
    ISSUER: props.issuer,
    CLIENTS: clients,
    SIGNER: 'kms',
    SIGNING_KEY_ID: props.activeKeyArn,
    RETIRING_KEY_IDS: props.retiringKeyArns.join(','),
    SIGNING_ALG: props.algorithm,
    ...(props.tableName !== undefined && { TABLE_NAME: props.tableName }),
    AWS_CALL_TIMEOUT_MS: String(DEFAULTS.awsCallTimeout.toMilliseconds()),
    AWS_MAX_ATTEMPTS: String(DEFAULTS.awsMaxAttempts),
    NODE_OPTIONS: '--enable-source-maps',
    POWERTOOLS_SERVICE_NAME: 'token-service',
    POWERTOOLS_METRICS_NAMESPACE: 'TokenService',
    POWERTOOLS_LOG_LEVEL: DEFAULTS.logLevel,
    // The event holds tokens and passwords: never log it.
    POWERTOOLS_LOGGER_LOG_EVENT: 'false',
  }
}

/**
 * A numeric setting as its variable's value, refused at synth (naming `prop` and the
 * variable) outside the range that functions/config.ts accepts at cold start.
 */
export function rangedSetting(
  prop: string,
  variable: keyof typeof SETTING_RANGES,
  value: number,
): string {
  const { min, max } = SETTING_RANGES[variable]
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(
      `${prop} must be an integer from ${min} to ${max} (${variable}), got ${String(value)}`,
    )
  }
  return String(value)
}

export interface TokenFunctionProps {
  /** Which handler: `functions/<name>/handler.ts`, export `handler`. */
  readonly name: FunctionName
  readonly environment: Record<string, string>
  /** @default DEFAULTS.logRetention */
  readonly logRetention?: logs.RetentionDays
  /** Of the log group. @default DEFAULTS.removalPolicy */
  readonly removalPolicy?: RemovalPolicy
}

/**
 * One handler as a Lambda function: bundled by esbuild (minified, source maps,
 * the AWS SDK included), arm64, X-Ray active, its own log group, and its own
 * role that starts with nothing but writing to that log group.
 */
export class TokenFunction extends Construct {
  public readonly function: NodejsFunction
  public readonly role: iam.Role
  public readonly logGroup: logs.LogGroup

  constructor(scope: Construct, id: string, props: TokenFunctionProps) {
    super(scope, id)
    const settings = FUNCTION_SETTINGS[props.name]
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? DEFAULTS.logRetention,
      removalPolicy: props.removalPolicy ?? DEFAULTS.removalPolicy,
    })
    // Its own role instead of AWSLambdaBasicExecutionRole, which may write to any log group.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Runs the ${props.name} function (${settings.purpose})`,
    })
    // Lambda names the log streams, hence the log group's `:*` ARN.
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    )
    this.function = new NodejsFunction(this, 'Function', {
      description: `Token service: ${settings.purpose}`,
      entry: `${PROJECT_ROOT}functions/${props.name}/handler.ts`,
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: `${PROJECT_ROOT}package-lock.json`,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: settings.memoryMiB,
      timeout: settings.timeout,
      role: this.role,
      logGroup: this.logGroup,
      tracing: lambda.Tracing.ACTIVE,
      environment: props.environment,
      bundling: {
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        format: OutputFormat.ESM,
        target: 'node24',
        mainFields: ['module', 'main'],
        banner: ESM_REQUIRE_BANNER,
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
      reason:
        'Invoked synchronously by API Gateway only: the caller gets the error and there is no event to keep. A dead-letter queue serves asynchronous invocations.',
    })
  }

  /** Allows `actions` on exactly `resources`, on this function's role. */
  allow(actions: readonly string[], resources: readonly string[]): void {
    if (actions.length === 0) return
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: [...actions], resources: [...resources] }),
    )
  }
}
