import { fileURLToPath } from 'node:url'
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib'
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2'
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations'
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb'
import * as iam from 'aws-cdk-lib/aws-iam'
import * as kms from 'aws-cdk-lib/aws-kms'
import * as lambda from 'aws-cdk-lib/aws-lambda'
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs'
import * as logs from 'aws-cdk-lib/aws-logs'
import { Construct } from 'constructs'
import { GSI1, TTL_ATTRIBUTE } from '../functions/adapters/table.js'
import type { ClientConfig } from '../functions/core/clients.js'

export type SigningAlgorithm = 'RS256' | 'ES256'

export interface TokenServiceProps {
  /**
   * The OAuth clients (DESIGN.md "Clients"). They reach the functions as the
   * `CLIENTS` environment variable; their `allowed_origins` make up the CORS allow-list.
   */
  readonly clients: ClientConfig[]
  /**
   * The `iss` claim and the base URL of the discovery documents. No trailing slash.
   * @default the HTTP API's endpoint, e.g. `https://abc123.execute-api.eu-west-1.amazonaws.com`
   */
  readonly issuer?: string
  /**
   * Access-token signing algorithm: `RS256` uses a KMS `RSA_2048` key, `ES256` an
   * `ECC_NIST_P256` key. Only RS256 tokens are accepted by the native HTTP API JWT authorizer.
   * @default 'RS256'
   */
  readonly algorithm?: SigningAlgorithm
  /**
   * What happens to the table, the signing key and the log groups when they leave the
   * stack. With `RETAIN` the table also gets deletion protection.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy
}

type FunctionName = 'login' | 'token' | 'revoke' | 'jwks'

const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url))

/** Lets CommonJS dependencies `require` Node built-ins from the ESM bundle. */
const ESM_REQUIRE_BANNER =
  "import { createRequire as __tsCreateRequire } from 'node:module';const require = __tsCreateRequire(import.meta.url);"

const FUNCTIONS: Record<FunctionName, { memoryMiB: number; timeout: Duration }> = {
  // scrypt with N=2^17 is CPU bound: 1769 MB is one full vCPU.
  login: { memoryMiB: 1769, timeout: Duration.seconds(10) },
  token: { memoryMiB: 1024, timeout: Duration.seconds(5) },
  revoke: { memoryMiB: 512, timeout: Duration.seconds(5) },
  jwks: { memoryMiB: 512, timeout: Duration.seconds(5) },
}

/**
 * The token service (DESIGN.md): a DynamoDB table, a KMS signing key, the
 * login/token/revoke/jwks functions and the HTTP API in front of them.
 */
export class TokenService extends Construct {
  public readonly table: dynamodb.Table
  public readonly signingKey: kms.Key
  public readonly signingKeyAlias: kms.Alias
  public readonly api: apigwv2.HttpApi
  public readonly issuer: string
  public readonly algorithm: SigningAlgorithm
  public readonly loginFunction: NodejsFunction
  public readonly tokenFunction: NodejsFunction
  public readonly revokeFunction: NodejsFunction
  public readonly jwksFunction: NodejsFunction
  /** The four functions, by name. */
  public readonly functions: Readonly<Record<FunctionName, NodejsFunction>>

  constructor(scope: Construct, id: string, props: TokenServiceProps) {
    super(scope, id)
    if (props.clients.length === 0) throw new Error('TokenService: clients must not be empty')
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN
    this.algorithm = props.algorithm ?? 'RS256'
    if (this.algorithm !== 'RS256' && this.algorithm !== 'ES256') {
      throw new Error(
        `TokenService: algorithm must be RS256 or ES256, got ${String(this.algorithm)}`,
      )
    }

    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: TTL_ATTRIBUTE,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: removalPolicy === RemovalPolicy.RETAIN,
      removalPolicy,
    })
    this.table.addGlobalSecondaryIndex({
      indexName: GSI1,
      partitionKey: { name: 'gsi1pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'gsi1sk', type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    })

    this.signingKey = new kms.Key(this, 'SigningKey', {
      description: `Signs the access tokens (${this.algorithm}) of ${this.node.path}`,
      keySpec: this.algorithm === 'RS256' ? kms.KeySpec.RSA_2048 : kms.KeySpec.ECC_NIST_P256,
      keyUsage: kms.KeyUsage.SIGN_VERIFY,
      removalPolicy,
    })
    this.signingKeyAlias = this.signingKey.addAlias(
      `alias/${Stack.of(this).stackName}/${this.node.id}-signing`,
    )

    const origins = [...new Set(props.clients.flatMap((client) => client.allowed_origins ?? []))]
    const accessLogs = new logs.LogGroup(this, 'ApiAccessLogs', {
      retention: logs.RetentionDays.THREE_MONTHS,
      removalPolicy,
    })
    this.api = new apigwv2.HttpApi(this, 'Api', {
      description: 'Token service: login, refresh, revoke, JWKS and discovery',
      ...(origins.length > 0 && {
        corsPreflight: {
          allowOrigins: origins,
          allowCredentials: true,
          allowMethods: [
            apigwv2.CorsHttpMethod.GET,
            apigwv2.CorsHttpMethod.POST,
            apigwv2.CorsHttpMethod.OPTIONS,
          ],
          allowHeaders: ['content-type', 'authorization'],
          maxAge: Duration.hours(1),
        },
      }),
    })
    const stage = this.api.defaultStage?.node.defaultChild as apigwv2.CfnStage
    stage.accessLogSettings = {
      destinationArn: accessLogs.logGroupArn,
      // No query strings or bodies: nothing here can carry a token or a password.
      format: JSON.stringify({
        requestId: '$context.requestId',
        ip: '$context.identity.sourceIp',
        requestTime: '$context.requestTimeEpoch',
        method: '$context.httpMethod',
        routeKey: '$context.routeKey',
        status: '$context.status',
        responseLength: '$context.responseLength',
        integrationLatency: '$context.integrationLatency',
        integrationError: '$context.integrationErrorMessage',
      }),
    }

    this.issuer = props.issuer ?? this.api.apiEndpoint
    const environment: Record<string, string> = {
      TABLE_NAME: this.table.tableName,
      ISSUER: this.issuer,
      CLIENTS: JSON.stringify(props.clients),
      SIGNER: 'kms',
      SIGNING_KEY_ID: this.signingKey.keyArn,
      SIGNING_ALG: this.algorithm,
      NODE_OPTIONS: '--enable-source-maps',
      POWERTOOLS_SERVICE_NAME: 'token-service',
      POWERTOOLS_METRICS_NAMESPACE: 'TokenService',
    }

    const make = (name: FunctionName): NodejsFunction => {
      const cap = name[0]?.toUpperCase() + name.slice(1)
      const logGroup = new logs.LogGroup(this, `${cap}Logs`, {
        retention: logs.RetentionDays.THREE_MONTHS,
        removalPolicy,
      })
      // Own role instead of AWSLambdaBasicExecutionRole: logs only to its own group.
      const role = new iam.Role(this, `${cap}Role`, {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        description: `Runs the ${name} function of ${this.node.path}`,
      })
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          resources: [logGroup.logGroupArn],
        }),
      )
      return new NodejsFunction(this, `${cap}Function`, {
        description: `Token service: ${name}`,
        entry: `${PROJECT_ROOT}functions/${name}/handler.ts`,
        handler: 'handler',
        projectRoot: PROJECT_ROOT,
        depsLockFilePath: `${PROJECT_ROOT}package-lock.json`,
        runtime: lambda.Runtime.NODEJS_24_X,
        architecture: lambda.Architecture.ARM_64,
        memorySize: FUNCTIONS[name].memoryMiB,
        timeout: FUNCTIONS[name].timeout,
        role,
        logGroup,
        environment,
        bundling: {
          minify: true,
          sourceMap: true,
          sourcesContent: false,
          format: OutputFormat.ESM,
          target: 'node24',
          mainFields: ['module', 'main'],
          banner: ESM_REQUIRE_BANNER,
          // Bundle the AWS SDK too: one tree-shaken file loads faster than the runtime's copy.
          externalModules: [],
        },
      })
    }
    this.loginFunction = make('login')
    this.tokenFunction = make('token')
    this.revokeFunction = make('revoke')
    this.jwksFunction = make('jwks')
    this.functions = {
      login: this.loginFunction,
      token: this.tokenFunction,
      revoke: this.revokeFunction,
      jwks: this.jwksFunction,
    }

    // Least privilege. TransactWriteItems is authorised per item action (Put, Update,
    // ConditionCheck), and only the one GSI is named, never index/*.
    const tableResources = [this.table.tableArn, `${this.table.tableArn}/index/${GSI1}`]
    const allowTable = (fn: NodejsFunction, actions: string[]) =>
      fn.addToRolePolicy(new iam.PolicyStatement({ actions, resources: tableResources }))
    // Find the user by username (gsi1), then create the session and its token in one
    // transaction guarded by a condition check on the user.
    allowTable(this.loginFunction, [
      'dynamodb:Query',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:ConditionCheckItem',
    ])
    // One batched read, then the rotation (update the session, put the new token).
    allowTable(this.tokenFunction, [
      'dynamodb:BatchGetItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
      'dynamodb:ConditionCheckItem',
    ])
    // One batched read, then mark the session revoked.
    allowTable(this.revokeFunction, [
      'dynamodb:BatchGetItem',
      'dynamodb:GetItem',
      'dynamodb:UpdateItem',
    ])

    const allowKey = (fn: NodejsFunction, actions: string[]) =>
      fn.addToRolePolicy(new iam.PolicyStatement({ actions, resources: [this.signingKey.keyArn] }))
    allowKey(this.loginFunction, ['kms:Sign', 'kms:GetPublicKey'])
    allowKey(this.tokenFunction, ['kms:Sign', 'kms:GetPublicKey'])
    allowKey(this.jwksFunction, ['kms:GetPublicKey'])

    const route = (path: string, method: apigwv2.HttpMethod, fn: NodejsFunction, id: string) =>
      this.api.addRoutes({
        path,
        methods: [method],
        integration: new HttpLambdaIntegration(id, fn),
      })
    route('/login', apigwv2.HttpMethod.POST, this.loginFunction, 'LoginIntegration')
    route('/token', apigwv2.HttpMethod.POST, this.tokenFunction, 'TokenIntegration')
    route('/revoke', apigwv2.HttpMethod.POST, this.revokeFunction, 'RevokeIntegration')
    const jwks = new HttpLambdaIntegration('JwksIntegration', this.jwksFunction)
    for (const path of [
      '/.well-known/jwks.json',
      '/.well-known/openid-configuration',
      '/.well-known/oauth-authorization-server',
    ]) {
      this.api.addRoutes({ path, methods: [apigwv2.HttpMethod.GET], integration: jwks })
    }

    // These are the OAuth endpoints themselves: a client has no token before /login,
    // /token authenticates by the refresh token (RFC 6749 §6, public clients), /revoke by
    // the token it revokes (RFC 7009), and JWKS/discovery are public by definition.
    for (const child of this.api.node.findAll()) {
      if (child instanceof apigwv2.CfnRoute) {
        Validations.of(child).acknowledge({
          id: 'AwsSolutions-APIG4',
          reason:
            'Public OAuth endpoints (login, token, revoke, JWKS, discovery): they authenticate the caller from the request body, or serve public keys.',
        })
      }
    }
  }
}
