/**
 * A synthesized stack, deployed into a `Cloud`: each AWS::Lambda::Function in
 * a sandbox of its own, the HTTP API as a node:http front built from the
 * template's routes, integrations, Lambda permissions and authorizer, and its
 * DynamoDB stream event source mappings as Lambda's poller runs them (on
 * request: `pollStreams`). This is a harness for our template, not an API
 * Gateway or Lambda emulator: it reads what our template uses and throws on
 * anything else. Not modelled: CORS preflights, throttling, access logs,
 * custom domains, the mappings' retry limits and dead-letter destination.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRemoteJWKSet, type JWTPayload, jwtVerify } from 'jose'
import { capture } from '../support/secrets.js'
import { streamRecords } from '../support/streams.js'
import { resourcesOf, type StackTemplate } from './assembly.js'
import {
  ACCOUNT,
  type BusEntry,
  type Caller,
  type Cloud,
  isAllowed,
  type Statement,
} from './cloud.js'
import { LambdaFunction } from './lambda.js'

export interface DeploymentOptions {
  /** The functions (code, environment, settings) come from this template. */
  readonly functions: StackTemplate
  /**
   * Everything else (IAM policies, KMS aliases, routes, authorizer) from this
   * one: a deploy half applied. @default `functions`
   */
  readonly rest?: StackTemplate
  /**
   * Hostnames that resolve to this deployment's front for its functions (the one
   * hostname of several regions, as latency routing answers a function in this region).
   */
  readonly hostnames?: readonly string[]
}

// biome-ignore lint/suspicious/noExplicitAny: resolved CloudFormation properties, read as the template has them
type Properties = Record<string, any>

interface Route {
  readonly method: string
  readonly path: string
  readonly functionArn: string
  readonly authorizer?: { readonly id: string; readonly properties: Properties }
}

type Reply = { status: number; headers?: Record<string, string | string[]>; body: string }

/** An AWS::Lambda::EventSourceMapping on the table's stream, resolved. */
interface StreamMapping {
  readonly functionName: string
  readonly streamArn: string
  readonly batchSize: number
  /** Lambda's filter patterns: a record goes to the function if any matches. */
  readonly patterns: readonly unknown[]
  readonly partialBatchResponse: boolean
  /** `LATEST`: the records written before the deployment are never handed over. */
  readonly latest: boolean
  /** The sequence number of the last record handed over (stream order). */
  position: string
}

/**
 * The properties of an event source mapping the harness reads. The last four are accepted
 * without being modelled: retries are from the first failed record, until they succeed
 * (no bisection, no age or retry limit), and nothing goes to a dead-letter destination
 * (`DestinationConfig.OnFailure`, the security events' and the fork consumer's queues).
 * Anything else throws.
 */
const MAPPING_PROPERTIES = new Set([
  'EventSourceArn',
  'FunctionName',
  'StartingPosition',
  'BatchSize',
  'FilterCriteria',
  'FunctionResponseTypes',
  'BisectBatchOnFunctionError',
  'MaximumRetryAttempts',
  'MaximumRecordAgeInSeconds',
  'DestinationConfig',
])

// API Gateway's own answers; an HTTP API cannot reshape them (README "Protecting routes").
const UNAUTHORIZED: Reply = { status: 401, body: '{"message":"Unauthorized"}' }
const FORBIDDEN: Reply = { status: 403, body: '{"message":"Forbidden"}' }
const INTERNAL_ERROR: Reply = { status: 500, body: '{"message":"Internal Server Error"}' }

export class Deployment {
  /** The HTTP front: `http://127.0.0.1:<port>`. */
  url = ''
  /** The API's own host, `<api-id>.execute-api.local.amazonaws.com`: the issuer's. */
  readonly apiHost: string
  readonly tableName: string
  /** Function name (`login`, `authorizer`, ...) -> its sandbox and IAM identity. */
  readonly functions = new Map<string, { lambda: LambdaFunction; caller: Caller }>()
  readonly #cloud: Cloud
  readonly #routes: Route[] = []
  readonly #permissions: { functionArn: string; sourceArn: string }[] = []
  readonly #authorizerCache = new Map<string, { until: number; context?: unknown }>()
  readonly #mappings: StreamMapping[] = []
  /** The stack's event buses (AWS::Events::EventBus), by ARN. */
  readonly #buses = new Set<string>()
  readonly #jwks = new Map<string, ReturnType<typeof createRemoteJWKSet>>()
  #clockOffsetMs = 0
  #server: Server | undefined
  #hostnames: readonly string[] = []
  /** Each function's removal from the cloud's Invoke API. */
  readonly #removals: (() => void)[] = []

  private constructor(cloud: Cloud, rest: StackTemplate) {
    this.#cloud = cloud
    const resolved = (type: string) =>
      new Map(
        resourcesOf(rest, type).map(([id, p]): [string, Properties] => [
          id,
          cloud.resolve(rest, p),
        ]),
      )
    const [api] = resourcesOf(rest, 'AWS::ApiGatewayV2::Api')
    this.apiHost = new URL(cloud.attribute(rest, api?.[0] ?? '', 'ApiEndpoint')).host
    // The stack's table, or (regions) the global table its primary defines, whose replica
    // here the other regions' stacks name.
    const [table] = [
      ...resourcesOf(rest, 'AWS::DynamoDB::Table'),
      ...resourcesOf(rest, 'AWS::DynamoDB::GlobalTable'),
    ]
    let tableName: string | undefined = table && cloud.ref(rest, table[0])
    for (const p of resolved('AWS::Lambda::Permission').values()) {
      if (p.Principal === 'apigateway.amazonaws.com' && p.Action === 'lambda:InvokeFunction') {
        this.#permissions.push({ functionArn: p.FunctionName, sourceArn: p.SourceArn })
      }
    }
    const integrations = resolved('AWS::ApiGatewayV2::Integration')
    const authorizers = resolved('AWS::ApiGatewayV2::Authorizer')
    for (const route of resolved('AWS::ApiGatewayV2::Route').values()) {
      const integration = integrations.get(String(route.Target).replace(/^integrations\//, ''))
      if (
        integration?.IntegrationType !== 'AWS_PROXY' ||
        integration.PayloadFormatVersion !== '2.0'
      ) {
        throw new Error(
          `${route.RouteKey}: only Lambda proxy integrations, payload 2.0, are modelled`,
        )
      }
      const [method, path] = String(route.RouteKey).split(' ') as [string, string]
      const authorizer = route.AuthorizerId && authorizers.get(route.AuthorizerId)
      this.#routes.push({
        method,
        path,
        functionArn: integration.IntegrationUri,
        ...(authorizer && { authorizer: { id: route.AuthorizerId, properties: authorizer } }),
      })
    }
    cloud.aliases = new Map(
      [...resolved('AWS::KMS::Alias').values()].map((p) => [p.AliasName, p.TargetKeyId]),
    )
    for (const [id, p] of resolved('AWS::Lambda::EventSourceMapping')) {
      if (
        !String(p.EventSourceArn).includes(':table/') ||
        !['TRIM_HORIZON', 'LATEST'].includes(p.StartingPosition)
      ) {
        throw new Error('only DynamoDB stream mappings from TRIM_HORIZON or LATEST are modelled')
      }
      const unmodelled = Object.keys(p).filter((key) => !MAPPING_PROPERTIES.has(key))
      if (unmodelled.length > 0) {
        throw new Error(`${id}: ${unmodelled.join(', ')} not modelled by the stack harness`)
      }
      tableName ??= /:table\/([^/]+)\/stream\//.exec(String(p.EventSourceArn))?.[1]
      this.#mappings.push({
        functionName: p.FunctionName,
        streamArn: p.EventSourceArn,
        batchSize: p.BatchSize ?? 100,
        patterns: (p.FilterCriteria?.Filters ?? []).map((f: { Pattern: string }) =>
          JSON.parse(f.Pattern),
        ),
        partialBatchResponse: (p.FunctionResponseTypes ?? []).includes('ReportBatchItemFailures'),
        latest: p.StartingPosition === 'LATEST',
        position: '',
      })
    }
    for (const [id] of resourcesOf(rest, 'AWS::Events::EventBus')) {
      this.#buses.add(cloud.attribute(rest, id, 'Arn'))
    }
    if (tableName === undefined) throw new Error(`${rest.stackName}: no table`)
    this.tableName = tableName
  }

  /** Provisions both templates' resources and serves the front; sandboxes start on first use. */
  static async start(
    cloud: Cloud,
    { functions, rest = functions, hostnames = [] }: DeploymentOptions,
  ): Promise<Deployment> {
    await cloud.provision(functions)
    await cloud.provision(rest)
    const deployment = new Deployment(cloud, rest)
    deployment.#hostnames = hostnames
    // A mapping from LATEST starts at the stream's end as the stack is deployed.
    for (const mapping of deployment.#mappings.filter((m) => m.latest)) {
      const records = await streamRecords(deployment.tableName, cloud.dynamodbLocal)
      mapping.position = String(records.at(-1)?.dynamodb?.SequenceNumber ?? '')
    }
    const server = createServer((req, res) => {
      deployment
        .#serve(req)
        .then((reply) => {
          res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers })
          res.end(reply.body)
        })
        .catch((error: unknown) => res.writeHead(500).end(String(error)))
    })
    deployment.#server = server
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    deployment.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    // A custom resource's provider runs at deploy time only: the cloud answers its resources.
    const providers = new Set(
      Object.values(functions.resources)
        .filter((r) => r.Type.startsWith('Custom::'))
        .map((r) => r.Properties.ServiceToken?.['Fn::GetAtt']?.[0]),
    )
    for (const [id, properties] of resourcesOf(functions, 'AWS::Lambda::Function')) {
      if (!providers.has(id)) deployment.#addFunction(functions, rest, id, properties)
    }
    return deployment
  }

  #addFunction(template: StackTemplate, rest: StackTemplate, id: string, p: Properties): void {
    const cloud = this.#cloud
    const name = (/^TokenService(\w+?)Function[0-9A-F]{8}$/.exec(id)?.[1] ?? id).toLowerCase()
    const functionName = cloud.ref(template, id)
    const accessKeyId = `ASIA${randomBytes(8).toString('hex').toUpperCase()}`
    const statements = roleStatements(cloud, rest, p.Role['Fn::GetAtt'][0])
    const caller: Caller = { name, accessKeyId, statements, calls: new Map() }
    cloud.callers.set(accessKeyId, caller)
    const codeDirectory = template.codeDirectory(id)
    const lambda = new LambdaFunction({
      name,
      functionName,
      arn: cloud.attribute(template, id, 'Arn'),
      codeDirectory,
      handler: p.Handler,
      environment: cloud.resolve(template, p.Environment?.Variables ?? {}),
      timeoutSeconds: p.Timeout ?? 3,
      memoryMiB: p.MemorySize ?? 128,
      apiHost: this.apiHost,
      hostnames: this.#hostnames,
      frontOrigin: this.url,
      // What Lambda sets (its reserved variables), then the harness's endpoints and isolation.
      sandbox: {
        AWS_LAMBDA_FUNCTION_NAME: functionName,
        AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(p.MemorySize ?? 128),
        AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${functionName}`,
        AWS_EXECUTION_ENV: `AWS_Lambda_${p.Runtime}`,
        AWS_REGION: cloud.region,
        AWS_DEFAULT_REGION: cloud.region,
        AWS_ACCESS_KEY_ID: accessKeyId,
        AWS_SECRET_ACCESS_KEY: randomBytes(20).toString('base64'),
        AWS_SESSION_TOKEN: randomBytes(32).toString('base64'),
        LAMBDA_TASK_ROOT: codeDirectory,
        TZ: ':UTC',
        PATH: '/usr/local/bin:/usr/bin/:/bin',
        AWS_ENDPOINT_URL_DYNAMODB: cloud.endpoint,
        AWS_ENDPOINT_URL_KMS: cloud.endpoint,
        AWS_ENDPOINT_URL_EVENTBRIDGE: cloud.endpoint,
        // Invoke of a function in any region (forwarding to the home): the cloud routes it.
        AWS_ENDPOINT_URL_LAMBDA: cloud.endpoint,
        // No AWS profile of this machine may reach the SDK.
        AWS_CONFIG_FILE: join(tmpdir(), 'stack-harness-no-aws-config'),
        AWS_SHARED_CREDENTIALS_FILE: join(tmpdir(), 'stack-harness-no-aws-credentials'),
      },
      // The test files' secrets audit (test/setup.ts) reads every line the functions log.
      onOutput: (text) => {
        capture().output.push(text)
        if (process.env.STACK_LOGS) process.stderr.write(`[${name}] ${text}`)
      },
    })
    lambda.setClockOffset(this.#clockOffsetMs)
    this.functions.set(name, { lambda, caller })
    this.#removals.push(
      cloud.addFunction(functionName, {
        arn: lambda.options.arn,
        invoke: (event) => lambda.invoke(event),
      }),
    )
  }

  /** What PutEvents put on this stack's own buses, in order. */
  busEntries(): BusEntry[] {
    return this.#cloud.busEntries.filter((entry) => this.#buses.has(entry.busArn))
  }

  /**
   * Lambda's poller, once, for each stream event source mapping: reads the
   * table stream's new records with the function's role (DescribeStream,
   * GetShardIterator, GetRecords on the stream), keeps those the mapping's
   * filter matches, and invokes the function with them in batches; a partial
   * batch response sends the batch again from the record it names. Returns
   * the invocations made.
   */
  async pollStreams(): Promise<number> {
    let invocations = 0
    for (const mapping of this.#mappings) {
      const target = [...this.functions.values()].find(
        (f) => f.lambda.options.functionName === mapping.functionName,
      )
      if (!target) throw new Error(`no function ${mapping.functionName}`)
      for (const action of [
        'dynamodb:DescribeStream',
        'dynamodb:GetShardIterator',
        'dynamodb:GetRecords',
      ]) {
        if (!this.#cloud.authorizeAs(target.caller, action, mapping.streamArn)) {
          throw new Error(`${target.caller.name} may not ${action} on its stream`)
        }
      }
      const all = (await streamRecords(this.tableName, this.#cloud.dynamodbLocal)).filter(
        (r) => String(r.dynamodb?.SequenceNumber) > mapping.position,
      )
      const last = all.at(-1)?.dynamodb?.SequenceNumber
      const records = all
        .map((r) => ({
          ...r,
          awsRegion: this.#cloud.region,
          eventSourceARN: mapping.streamArn,
          dynamodb: {
            ...r.dynamodb,
            // Lambda hands over epoch seconds, the SDK a Date.
            ApproximateCreationDateTime: Math.floor(
              new Date(r.dynamodb?.ApproximateCreationDateTime as unknown as string).getTime() /
                1000,
            ),
          },
        }))
        .filter(
          (r) => mapping.patterns.length === 0 || mapping.patterns.some((p) => matchesFilter(p, r)),
        )
      for (let at = 0; at < records.length; ) {
        const batch = records.slice(at, at + mapping.batchSize)
        invocations += 1
        if (invocations > 100) throw new Error('the function keeps failing its batches')
        const result = (await target.lambda.invoke({ Records: batch })) as
          | { batchItemFailures?: { itemIdentifier: string }[] }
          | undefined
        const failed = mapping.partialBatchResponse
          ? result?.batchItemFailures?.[0]?.itemIdentifier
          : undefined
        const from = batch.findIndex((r) => r.dynamodb?.SequenceNumber === failed)
        at += failed === undefined ? batch.length : Math.max(from, 0)
      }
      if (last) mapping.position = last
    }
    return invocations
  }

  /** Moves every sandbox's clock, and the front's (authorizer cache, JWT checks), `ms` ahead. */
  advanceClock(ms: number): void {
    this.#clockOffsetMs += ms
    for (const { lambda } of this.functions.values()) lambda.setClockOffset(this.#clockOffsetMs)
  }

  /** The time the sandboxes see (epoch ms): what a client's DPoP proof must be dated by. */
  now(): number {
    return this.#now()
  }

  async stop(): Promise<void> {
    for (const { lambda, caller } of this.functions.values()) {
      lambda.stop()
      this.#cloud.callers.delete(caller.accessKeyId)
    }
    for (const remove of this.#removals.splice(0)) remove()
    const server = this.#server
    server?.closeAllConnections()
    if (server) await new Promise((resolve) => server.close(resolve))
  }

  /** Every AWS call a function made that its policy did not allow: `function action resource`. */
  denials(): string[] {
    return [...this.functions.values()].flatMap(({ caller }) =>
      [...caller.calls]
        .filter(([, count]) => count.denied > 0)
        .map(([call]) => `${caller.name} ${this.#labelled(call)}`),
    )
  }

  /**
   * Per function: its cold-init times; its grants, each with the calls it
   * allowed (`logs:` and `xray:` are the Lambda service's, not the code's);
   * the calls its policy denied.
   */
  report(title: string): string {
    const lines = [`${title}: AWS actions used against actions granted, per function`]
    for (const { lambda, caller } of this.functions.values()) {
      const inits = lambda.inits.length ? `${lambda.inits.join(', ')} ms` : 'never started'
      const used: string[] = []
      const unused: string[] = []
      for (const { Effect, Action, Resource } of caller.statements) {
        for (const action of [Action].flat().filter((a) => !/^(logs|xray):/.test(a))) {
          for (const resource of [Resource].flat()) {
            const grant = [{ Effect, Action: action, Resource: resource }]
            const calls = [...caller.calls]
              .filter(([call]) => isAllowed(grant, ...(call.split(' ') as [string, string])))
              .reduce((sum, [, count]) => sum + count.allowed, 0)
            const name = this.#labelled(`${action} ${resource}`)
            if (calls > 0) used.push(`${name} x${calls}`)
            else unused.push(name)
          }
        }
      }
      const denied = [...caller.calls]
        .filter(([, count]) => count.denied > 0)
        .map(([call, count]) => `${this.#labelled(call)} x${count.denied}`)
      lines.push(`  ${caller.name} (cold init: ${inits})`)
      lines.push(`    used:    ${used.join(', ') || 'nothing'}`)
      lines.push(`    unused:  ${unused.join(', ') || 'nothing'}`)
      if (denied.length) lines.push(`    DENIED:  ${denied.join(', ')}`)
    }
    return lines.join('\n')
  }

  #labelled(call: string): string {
    const [action, resource] = call.split(' ') as [string, string]
    return `${action} ${this.#cloud.label(resource)}`
  }

  #now(): number {
    return Date.now() + this.#clockOffsetMs
  }

  async #serve(req: IncomingMessage): Promise<Reply> {
    const url = new URL(req.url ?? '/', 'http://front')
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    for (const route of this.#routes) {
      const pathParameters = req.method === route.method && matchPath(route.path, url.pathname)
      if (!pathParameters) continue
      const event = toEvent(req, url, route, Buffer.concat(chunks), pathParameters, this.apiHost)
      if (route.authorizer) {
        const refused = await this.#authorize(route, route.authorizer, event)
        if (refused) return refused
      }
      return this.#integrate(route, event)
    }
    return { status: 404, body: '{"message":"Not Found"}' }
  }

  async #integrate(route: Route, event: EventV2): Promise<Reply> {
    const sourceArn = `${this.#executeApiArn()}/$default/${route.method}${route.path}`
    const result = await this.#invoke(route.functionArn, sourceArn, event)
    if (result === undefined) return INTERNAL_ERROR
    if (typeof result !== 'object' || result === null || !('statusCode' in result)) {
      return { status: 200, body: JSON.stringify(result) }
    }
    const { statusCode, headers, cookies, body, isBase64Encoded } = result as Properties
    return {
      status: statusCode,
      headers: { ...headers, ...(cookies?.length && { 'set-cookie': cookies }) },
      body: isBase64Encoded ? Buffer.from(body ?? '', 'base64').toString() : (body ?? ''),
    }
  }

  #executeApiArn(): string {
    return `arn:aws:execute-api:${this.#cloud.region}:${ACCOUNT}:${this.apiHost.split('.')[0]}`
  }

  /**
   * Invokes a function as API Gateway does: only with a Lambda permission for
   * this source ARN. `undefined` when that fails (no permission, an error, a timeout).
   */
  async #invoke(functionArn: string, sourceArn: string, event: unknown): Promise<unknown> {
    const permitted = this.#permissions.some(
      (p) =>
        p.functionArn === functionArn &&
        isAllowed([{ Effect: 'Allow', Action: '*', Resource: p.sourceArn }], '*', sourceArn),
    )
    const target = [...this.functions.values()].find((f) => f.lambda.options.arn === functionArn)
    if (!permitted || !target) return undefined
    return target.lambda.invoke(event).catch(() => undefined)
  }

  /**
   * API Gateway's part of an authorizer: a missing identity source is 401
   * without a call; a Lambda authorizer (payload 2.0, simple responses) says
   * allow or deny (403), and its answer is cached per identity source for the
   * template's TTL; a JWT authorizer checks issuer, audience and signature.
   */
  async #authorize(
    route: Route,
    { id, properties: p }: NonNullable<Route['authorizer']>,
    event: EventV2,
  ): Promise<Reply | undefined> {
    const identity = (p.IdentitySource as string[]).map((source) => {
      const header = /^\$request\.header\.(.+)$/i.exec(source)?.[1]
      if (!header) throw new Error(`identity source ${source} is not modelled`)
      return event.headers[header.toLowerCase()]
    })
    if (identity.some((value) => !value)) return UNAUTHORIZED
    if (p.AuthorizerType === 'JWT') return this.#authorizeJwt(p, String(identity[0]), event)
    if (
      p.AuthorizerType !== 'REQUEST' ||
      p.AuthorizerPayloadFormatVersion !== '2.0' ||
      !p.EnableSimpleResponses
    ) {
      throw new Error(`authorizer ${id}: only REQUEST, payload 2.0, simple responses is modelled`)
    }
    const cacheKey = `${id} ${identity.join(',')}`
    let verdict = this.#authorizerCache.get(cacheKey)
    if (!verdict || verdict.until <= this.#now()) {
      const {
        body: _body,
        isBase64Encoded: _encoded,
        ...request
      } = event as EventV2 & { body?: string }
      const functionArn = /functions\/(.+)\/invocations$/.exec(p.AuthorizerUri)?.[1] ?? ''
      const result = (await this.#invoke(
        functionArn,
        `${this.#executeApiArn()}/authorizers/${id}`,
        {
          ...request,
          type: 'REQUEST',
          routeArn: `${this.#executeApiArn()}/$default/${route.method}${event.rawPath}`,
          identitySource: identity,
        },
      )) as { isAuthorized?: unknown; context?: unknown } | undefined
      if (result === undefined) return INTERNAL_ERROR // a failure is not cached
      verdict = {
        until: this.#now() + (p.AuthorizerResultTtlInSeconds ?? 0) * 1000,
        ...(result.isAuthorized === true && { context: result.context ?? {} }),
      }
      this.#authorizerCache.set(cacheKey, verdict)
    }
    if (!verdict.context) return FORBIDDEN
    event.requestContext.authorizer = { lambda: verdict.context }
    return undefined
  }

  /** The native JWT authorizer: keys from the issuer's discovery document (via the front), RS256. */
  async #authorizeJwt(p: Properties, header: string, event: EventV2): Promise<Reply | undefined> {
    const { Issuer: issuer, Audience: audience } = p.JwtConfiguration
    let keys = this.#jwks.get(issuer)
    if (!keys) {
      const local = (address: string) => address.replace(`https://${this.apiHost}`, this.url)
      const discovery = await fetch(local(`${issuer}/.well-known/openid-configuration`))
      const { jwks_uri } = (await discovery.json()) as { jwks_uri: string }
      keys = createRemoteJWKSet(new URL(local(jwks_uri)))
      this.#jwks.set(issuer, keys)
    }
    let claims: JWTPayload
    try {
      const verified = await jwtVerify(header.replace(/^Bearer /i, ''), keys, {
        issuer,
        audience,
        algorithms: ['RS256'],
        currentDate: new Date(this.#now()),
      })
      claims = verified.payload
    } catch (error) {
      const why = (error as Error).message.replace(/"/g, "'")
      return {
        ...UNAUTHORIZED,
        headers: { 'www-authenticate': `Bearer error="invalid_token" error_description="${why}"` },
      }
    }
    // API Gateway hands every claim over as a string, arrays as `[a b]`.
    const strings = Object.fromEntries(
      Object.entries(claims).map(([name, value]) => [
        name,
        Array.isArray(value) ? `[${value.join(' ')}]` : String(value),
      ]),
    )
    const scopes = typeof claims.scope === 'string' ? claims.scope.split(' ') : null
    event.requestContext.authorizer = { jwt: { claims: strings, scopes } }
    return undefined
  }
}

/** The role's statements: its inline policies and the AWS::IAM::Policy resources attached to it. */
function roleStatements(cloud: Cloud, template: StackTemplate, roleId: string): Statement[] {
  const role = template.resources[roleId]?.Properties ?? {}
  if (role.ManagedPolicyArns?.length)
    throw new Error(`${roleId}: managed policies are not modelled`)
  const attached = resourcesOf(template, 'AWS::IAM::Policy')
    .map(([, p]) => p)
    .filter((p) => p.Roles.some((r: { Ref?: string }) => r.Ref === roleId))
  return [...(role.Policies ?? []), ...attached].flatMap(
    (p) => cloud.resolve(template, p.PolicyDocument).Statement,
  )
}

/**
 * Lambda's event filtering, the part our patterns use: an object matches
 * field by field, and an array of values matches one of them; `{ exists: false }`
 * matches a field that is absent (`{ exists: true }` one that is there).
 */
export function matchesFilter(pattern: unknown, value: unknown): boolean {
  if (Array.isArray(pattern)) {
    return pattern.some((wanted) =>
      typeof wanted === 'object' && wanted !== null && 'exists' in wanted
        ? (wanted as { exists: boolean }).exists === (value !== undefined)
        : wanted === value,
    )
  }
  if (pattern === null || typeof pattern !== 'object') {
    throw new Error(`filter pattern ${JSON.stringify(pattern)} is not modelled`)
  }
  const object = (value ?? {}) as Record<string, unknown>
  return Object.entries(pattern).every(([key, inner]) => matchesFilter(inner, object[key]))
}

/** The path parameters if `pathname` matches the route path (`{name}`: one segment), else undefined. */
function matchPath(pattern: string, pathname: string): Record<string, string> | undefined {
  const want = pattern.split('/')
  const got = pathname.split('/')
  if (want.length !== got.length) return undefined
  const parameters: Record<string, string> = {}
  for (const [i, segment] of want.entries()) {
    const name = /^\{(\w+)\}$/.exec(segment)?.[1]
    if (name === undefined && segment !== got[i]) return undefined
    if (name !== undefined) {
      if (!got[i]) return undefined
      parameters[name] = decodeURIComponent(got[i] as string)
    }
  }
  return parameters
}

type EventV2 = ReturnType<typeof toEvent>

/** The payload 2.0 event of a request: lower-case headers, cookies apart, text or base64 body. */
function toEvent(
  req: IncomingMessage,
  url: URL,
  route: Route,
  body: Buffer,
  pathParameters: Record<string, string>,
  apiHost: string,
) {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(req.headers)) {
    if (name !== 'cookie' && value !== undefined) headers[name] = [value].flat().join(',')
  }
  headers.host = apiHost
  const cookies = (req.headers.cookie ?? '')
    .split(';')
    .map((cookie) => cookie.trim())
    .filter(Boolean)
  const text = /^(text\/|application\/(json|xml|javascript))/.test(headers['content-type'] ?? '')
  const now = new Date()
  const routeKey = `${route.method} ${route.path}`
  const apiId = apiHost.split('.')[0] as string
  return {
    version: '2.0',
    routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    ...(cookies.length > 0 && { cookies }),
    headers,
    ...(url.search && { queryStringParameters: Object.fromEntries(url.searchParams) }),
    ...(Object.keys(pathParameters).length > 0 && { pathParameters }),
    requestContext: {
      accountId: ACCOUNT,
      apiId,
      domainName: apiHost,
      domainPrefix: apiId,
      http: {
        method: route.method,
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey,
      stage: '$default',
      time: now.toISOString(),
      timeEpoch: now.getTime(),
      authorizer: undefined as unknown,
    },
    isBase64Encoded: body.length > 0 && !text,
    ...(body.length > 0 && { body: body.toString(text ? 'utf8' : 'base64') }),
  }
}
