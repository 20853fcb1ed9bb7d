/**
 * The AWS account a synthesized stack runs in, made of what our template uses
 * and nothing more: physical ids for its resources, the CloudFormation
 * intrinsics it writes, one endpoint that speaks KMS (JSON 1.1, real keys),
 * EventBridge's PutEvents (JSON 1.1, the entries kept), Lambda's Invoke
 * (REST JSON) and fronts DynamoDB Local (JSON 1.0, with its Streams), and IAM:
 * every call is checked against the calling function's policy statements and
 * recorded.
 *
 * One `Cloud` is one region of the account (`local` unless named). Clouds of
 * several regions are joined with `Cloud.link` (test/stack/regions.ts): then a
 * global table's replicas are created in each region's DynamoDB Local, a
 * multi-Region key's replica shares its key material and key id, a
 * cross-region reference (`Fn::GetStackOutput`) reads the other region's
 * deployed stack, an Invoke signed for another region is served by that
 * region's functions, and a DynamoDB item read or write signed for another
 * region (a client of that region) by that region's DynamoDB Local, under IAM
 * on that region's table (neither answered when that region is `down`).
 */
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createHash,
  type KeyObject,
  privateEncrypt,
  randomBytes,
} from 'node:crypto'
import {
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  type AttributeValue,
  CreateTableCommand,
  DynamoDBClient,
  GetItemCommand,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb'
import { TABLE_SCHEMA } from '../../functions/adapters/dynamodb/table.js'
import { ecdsaSignDigest, ecKey, rsaKey, SHA256_DIGEST_INFO } from '../support/fake-kms.js'
import type { StackTemplate } from './assembly.js'

export const REGION = 'local'
export const ACCOUNT = '000000000000'

export interface Statement {
  readonly Effect: 'Allow' | 'Deny'
  readonly Action: string | readonly string[]
  readonly Resource: string | readonly string[]
  readonly Condition?: Record<string, Record<string, string | readonly string[]>>
}

/** An entry PutEvents accepted, on the bus it names. */
export interface BusEntry {
  readonly busArn: string
  readonly source: string
  readonly detailType: string
  readonly detail: string
}

/** A function as AWS sees its calls: its access key (the role session) and its role's statements. */
export interface Caller {
  readonly name: string
  readonly accessKeyId: string
  readonly statements: readonly Statement[]
  /** `action resource` -> calls allowed and denied. */
  readonly calls: Map<string, { allowed: number; denied: number }>
}

interface SigningKey {
  readonly arn: string
  readonly spec: 'RSA_2048' | 'ECC_NIST_P256'
  readonly privateKey: KeyObject
  readonly publicKey: KeyObject
  /**
   * Its key policy's statements for the account: the uses the account's IAM policies may
   * grant (CDK's default policy: `kms:*`; the service's keys: their own uses only).
   */
  readonly keyPolicy: readonly Statement[]
  /** Its tags, as a request on it carries them: `aws:ResourceTag/<key>` -> value. */
  readonly tags: Readonly<Record<string, string>>
}

/**
 * One AWS call the cloud served, as the capacity meter records it
 * (test/stack/capacity.test.ts). DynamoDB's consumed capacity is what DynamoDB
 * Local reports with `ReturnConsumedCapacity: INDEXES`, asked for by the
 * cloud on the way through (the function's own request is left as it sent it,
 * and the figures are taken out of the answer it gets unless it asked).
 */
export interface MeteredCall {
  /** The calling function (`login`, `token`, ...). */
  readonly caller: string
  readonly service: 'dynamodb' | 'kms' | 'events' | 'lambda'
  /** `Sign`, `TransactWriteItems`, ... */
  readonly operation: string
  /** The error the call answered, if any (no capacity is reported for it). */
  readonly error?: string
  /** The SDK's attempt (its `amz-sdk-request` header), when this was a retry: 2, 3, ... */
  readonly attempt?: number
  /**
   * The region the request was signed for and served in, when not this cloud's (a client
   * of another region: that region's DynamoDB Local answered).
   */
  readonly region?: string
  /** Capacity units on the table itself (reads or writes, as the operation is). */
  readonly table?: number
  /** Capacity units on each global secondary index. */
  readonly indexes?: Readonly<Record<string, number>>
  /**
   * TransactWriteItems only: the write units AWS bills for it by its published
   * rules (2 per KB of each item, the larger of before and after, a
   * ConditionCheck's item included; 2 per KB of each index entry written),
   * from the items' sizes read around the call. DynamoDB Local reports less:
   * it adds up only the distinct per-item figures (four 10-byte Puts report 2).
   */
  readonly billed?: number
}

/** The DynamoDB operations that take `ReturnConsumedCapacity`. */
const METERED_OPERATIONS = new Set([
  'GetItem',
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'BatchGetItem',
  'BatchWriteItem',
  'Query',
  'Scan',
  'TransactGetItems',
  'TransactWriteItems',
])

/**
 * What a request signed for another region may be (`Cloud.#servedIn`): the item reads and
 * writes of a DynamoDB client of that region. A transaction there is not modelled (the
 * meter's billed figure reads this region's tables).
 */
const CROSS_REGION_OPERATIONS = new Set(['GetItem', 'PutItem'])

/** A symmetric key (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT): it wraps data keys. */
interface SymmetricKey {
  readonly arn: string
  readonly spec: 'SYMMETRIC_DEFAULT'
  readonly secret: Buffer
  readonly keyPolicy: readonly Statement[]
  readonly tags: Readonly<Record<string, string>>
}

const list = <T>(value: T | readonly T[] | undefined): readonly T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value as T]

/** IAM's wildcards: `*` any run of characters, `?` one; actions match in any letter case. */
function wildcard(pattern: string, value: string, ignoreCase: boolean): boolean {
  const source = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.')
  return new RegExp(`^${source}$`, ignoreCase ? 'i' : '').test(value)
}

const CONDITION_OPERATORS: Record<string, (want: string, got: string) => boolean> = {
  StringEquals: (want, got) => want === got,
  StringLike: (want, got) => wildcard(want, got, false),
  // A multi-valued key (dynamodb:LeadingKeys): every value the request carries must match.
  'ForAllValues:StringLike': (want, got) => wildcard(want, got, false),
}

/**
 * `ForAllValues:<operator>`: every value of a multivalued key (`dynamodb:LeadingKeys`)
 * matches one of the wanted ones; a request that carries no such key passes, as in IAM.
 */
const SET_OPERATOR = /^ForAllValues:(\w+)$/

/**
 * Identity-policy evaluation as IAM does it for one request: an explicit Deny
 * wins, else any Allow, else denied. A condition key the request does not
 * carry fails its condition. Elements and operators the template does not use
 * throw, so that a change to the policies cannot be silently misread here.
 */
export function isAllowed(
  statements: readonly Statement[],
  action: string,
  resource: string,
  context: Record<string, string | readonly string[]> = {},
): boolean {
  let allowed = false
  for (const statement of statements) {
    for (const element of Object.keys(statement)) {
      if (!['Sid', 'Effect', 'Action', 'Resource', 'Condition'].includes(element)) {
        throw new Error(`IAM element ${element} is not modelled by the stack harness`)
      }
    }
    if (!list(statement.Action).some((pattern) => wildcard(pattern, action, true))) continue
    if (!list(statement.Resource).some((pattern) => wildcard(pattern, resource, false))) continue
    const conditions = Object.entries(statement.Condition ?? {})
    const holds = conditions.every(([operator, keys]) => {
      const forAll = SET_OPERATOR.exec(operator)?.[1]
      const test = CONDITION_OPERATORS[forAll ?? operator]
      if (!test) throw new Error(`IAM condition ${operator} is not modelled by the stack harness`)
      return Object.entries(keys).every(([key, wanted]) => {
        const got = Object.entries(context).find(
          ([name]) => name.toLowerCase() === key.toLowerCase(),
        )
        const matches = (value: string) => list(wanted).some((want) => test(want, value))
        if (forAll !== undefined) return got === undefined || list(got[1]).every(matches)
        if (Array.isArray(got?.[1])) throw new Error(`IAM condition ${operator} on a set: ${key}`)
        return got !== undefined && matches(got[1] as string)
      })
    })
    if (!holds) continue
    if (statement.Effect === 'Deny') return false
    allowed = true
  }
  return allowed
}

/** A function the Lambda Invoke API may run: its ARN and one synchronous invocation. */
export interface InvokeTarget {
  readonly arn: string
  readonly invoke: (event: unknown) => Promise<unknown>
}

export class Cloud {
  /** Physical names carry it, so that clouds sharing one DynamoDB Local never meet. */
  readonly id = randomBytes(3).toString('hex')
  /** The region's name: ARNs, `AWS::Region`, the credential scope of Invoke. */
  readonly region: string
  /**
   * The region is lost: an Invoke from another region, or a DynamoDB request
   * another region's function signed for this one, gets no answer, as the
   * forwarding adapter's "unreachable" expects: `drop`, the connection closes at
   * once (refused); `hang`, nothing ever answers (the caller's timeout ends it).
   */
  down: false | 'drop' | 'hang' = false
  readonly callers = new Map<string, Caller>()
  /** KMS aliases of the deployment in charge (AWS::KMS::Alias): name -> key ARN. */
  aliases = new Map<string, string>()
  /** The endpoint's URL, for `AWS_ENDPOINT_URL_KMS`, `_DYNAMODB` and `_EVENTBRIDGE`. */
  endpoint = ''
  /** Every entry PutEvents accepted, in order. */
  readonly busEntries: BusEntry[] = []
  /** Every call a function made, in order, with DynamoDB's consumed capacity (`MeteredCall`). */
  readonly meter: MeteredCall[] = []
  /**
   * The Invokes sent to a region that was down (dropped or never answered): not in `meter`,
   * which has only what was answered, but what a forward's attempt costs its caller.
   */
  readonly unanswered: { readonly caller: string; readonly region: string }[] = []
  /**
   * Request rates above which the stand-ins throttle, as KMS and DynamoDB do
   * (KMS: its cryptographic operations, per account and region; DynamoDB: the
   * table's requests). Counted per window, which moves only with
   * `nextWindow()`, so that tests move time instead of sleeping. Unset: no limit.
   */
  limits: { kms?: number; dynamodb?: number } = {}
  #used = { kms: 0, dynamodb: 0 }
  readonly #keys = new Map<string, SigningKey | SymmetricKey>()
  readonly #tables = new Set<string>()
  /** Each table's GSIs: their key attributes and projection, for the billed figure. */
  readonly #indexes = new Map<string, { keys: string[]; projection: string }[]>()
  #reader: DynamoDBClient | undefined
  readonly #labels = new Map<string, string>()
  readonly #dynamodbLocal: string
  #server: Server | undefined
  /** The account's other regions (`link`). */
  readonly #peers = new Map<string, Cloud>()
  /** The templates deployed here, by stack name (the last one provisioned): their outputs. */
  readonly #stacks = new Map<string, StackTemplate>()
  /** Functions Invoke may reach, by function name. */
  readonly #functions = new Map<string, InvokeTarget>()

  constructor(dynamodbLocal: string, options: { readonly region?: string } = {}) {
    this.#dynamodbLocal = dynamodbLocal
    this.region = options.region ?? REGION
  }

  /** Makes clouds regions of one account: each reaches the others (see the class comment). */
  static link(...clouds: Cloud[]): void {
    for (const cloud of clouds) {
      for (const other of clouds) if (other !== cloud) cloud.#peers.set(other.region, other)
    }
  }

  /** The DynamoDB Local this region's tables live in. */
  get dynamodbLocal(): string {
    return this.#dynamodbLocal
  }

  /**
   * Lets Invoke reach a deployed function by its name (Deployment does it for each
   * function); returns its removal, which leaves alone a later deployment's function of
   * that name (the steps of one stack share names).
   */
  addFunction(functionName: string, target: InvokeTarget): () => void {
    this.#functions.set(functionName, target)
    return () => {
      if (this.#functions.get(functionName) === target) this.#functions.delete(functionName)
    }
  }

  /** This region or a linked one; throws for a region the harness was not given. */
  #cloudOf(region: string): Cloud {
    const cloud = region === this.region ? this : this.#peers.get(region)
    if (!cloud) throw new Error(`region ${region} is not modelled: link a Cloud for it`)
    return cloud
  }

  async start(): Promise<void> {
    // Key pairs for GenerateDataKeyPairWithoutPlaintext, made ahead: RSA key generation on a
    // busy machine can outlast the functions' 1 s call timeout, which real KMS does not.
    for (const spec of ['RSA_2048', 'RSA_2048', 'ECC_NIST_P256', 'ECC_NIST_P256'] as const) {
      PAIRS[spec].push(spec === 'RSA_2048' ? rsaKey() : ecKey())
    }
    this.#server = createServer((req, res) => {
      this.#serve(req, res).catch((error: unknown) => {
        res.writeHead(500).end(String(error))
      })
    })
    await new Promise<void>((resolve) => this.#server?.listen(0, '127.0.0.1', resolve))
    this.endpoint = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`
  }

  async stop(): Promise<void> {
    this.#reader?.destroy()
    const server = this.#server
    if (!server) return
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }

  /** Starts a new rate window: the limits' counts start again from zero. */
  nextWindow(): void {
    this.#used = { kms: 0, dynamodb: 0 }
  }

  /**
   * True when one more request of `service` exceeds its limit in this window. A
   * refused request uses none of it (a throttled request consumes no capacity).
   */
  #throttled(service: 'kms' | 'dynamodb'): boolean {
    const limit = this.limits[service]
    if (limit === undefined) return false
    if (this.#used[service] >= limit) return true
    this.#used[service] += 1
    return false
  }

  /** A short name for an ARN in reports: `table`, `table/index/gsi1`, `key k1`. */
  label(arn: string): string {
    if (arn === '*') return '*'
    for (const [prefix, label] of this.#labels) {
      if (arn.startsWith(prefix)) return `${label}${arn.slice(prefix.length)}`
    }
    return arn
  }

  /** Stable across the templates of one stack, as CloudFormation keeps a resource's name. */
  #physicalId(template: StackTemplate, logicalId: string): string {
    return `${template.stackName}-${logicalId}-${this.id}`
  }

  #hashedId(template: StackTemplate, logicalId: string): string {
    return createHash('sha256').update(this.#physicalId(template, logicalId)).digest('hex')
  }

  /** `Ref`: a pseudo parameter, or what CloudFormation returns for our resource types. */
  ref(template: StackTemplate, logicalId: string): string {
    const pseudo: Record<string, string> = {
      'AWS::Region': this.region,
      'AWS::AccountId': ACCOUNT,
      'AWS::Partition': 'aws',
      'AWS::URLSuffix': 'amazonaws.com',
      'AWS::StackName': template.stackName,
    }
    const resource = template.resources[logicalId]
    const type = resource?.Type ?? ''
    if (pseudo[logicalId] !== undefined) return pseudo[logicalId]
    if (type === 'AWS::KMS::Key' && resource?.Properties.MultiRegion === true) {
      // A multi-Region key's id, the same in every region (its replicas name it).
      return `mrk-${this.#hashedId(template, logicalId).slice(0, 32)}`
    }
    if (type === 'AWS::KMS::Key') {
      const uuid = /(.{8})(.{4})(.{4})(.{4})(.{12})/.exec(this.#hashedId(template, logicalId))
      return uuid?.slice(1).join('-') ?? ''
    }
    if (type === 'AWS::KMS::ReplicaKey') {
      return (
        String(this.resolve(template, resource?.Properties.PrimaryKeyArn)).split('/').pop() ?? ''
      )
    }
    // Names the template gives (a global table, a function other regions invoke by name).
    if (
      type === 'AWS::DynamoDB::GlobalTable' &&
      typeof resource?.Properties.TableName === 'string'
    ) {
      return resource.Properties.TableName
    }
    if (type === 'AWS::Lambda::Function' && typeof resource?.Properties.FunctionName === 'string') {
      return resource.Properties.FunctionName
    }
    if (type === 'AWS::ApiGatewayV2::Api') return this.#hashedId(template, logicalId).slice(0, 10)
    if (type === 'AWS::SQS::Queue') {
      return `https://sqs.${this.region}.amazonaws.com/${ACCOUNT}/${this.#physicalId(template, logicalId)}`
    }
    if (type === 'AWS::KMS::Alias') return resource?.Properties.AliasName
    if (/^AWS::ApiGatewayV2::(Integration|Authorizer)$/.test(type)) return logicalId
    if (
      /^AWS::(DynamoDB::Table|Lambda::Function|IAM::Role|Logs::LogGroup|Events::EventBus)$/.test(
        type,
      )
    ) {
      return this.#physicalId(template, logicalId)
    }
    throw new Error(`Ref of ${logicalId} (${type}) is not modelled by the stack harness`)
  }

  /** `Fn::GetAtt`, for the attributes our template reads. */
  attribute(template: StackTemplate, logicalId: string, name: string): string {
    const type = `${template.resources[logicalId]?.Type}.${name}`
    if (template.resources[logicalId]?.Type === 'AWS::CloudFormation::CustomResource') {
      throw new Error(`${logicalId}: custom resources other than Custom::AWS are not modelled`)
    }
    if (template.resources[logicalId]?.Type === 'Custom::AWS') {
      return this.#awsCustomResource(template, logicalId, name)
    }
    const id = this.ref(template, logicalId)
    const physical = this.#physicalId(template, logicalId)
    const region = this.region
    const arns: Record<string, string> = {
      'AWS::DynamoDB::Table.Arn': `arn:aws:dynamodb:${region}:${ACCOUNT}:table/${id}`,
      // One stream per table here, under one label.
      'AWS::DynamoDB::Table.StreamArn': streamArn(region, id),
      // This region's replica, and its stream.
      'AWS::DynamoDB::GlobalTable.Arn': `arn:aws:dynamodb:${region}:${ACCOUNT}:table/${id}`,
      'AWS::DynamoDB::GlobalTable.StreamArn': streamArn(region, id),
      'AWS::Events::EventBus.Arn': `arn:aws:events:${region}:${ACCOUNT}:event-bus/${id}`,
      'AWS::SQS::Queue.Arn': `arn:aws:sqs:${region}:${ACCOUNT}:${physical}`,
      'AWS::SQS::Queue.QueueName': physical,
      'AWS::KMS::Key.Arn': `arn:aws:kms:${region}:${ACCOUNT}:key/${id}`,
      'AWS::KMS::ReplicaKey.Arn': `arn:aws:kms:${region}:${ACCOUNT}:key/${id}`,
      'AWS::Lambda::Function.Arn': `arn:aws:lambda:${region}:${ACCOUNT}:function:${id}`,
      'AWS::IAM::Role.Arn': `arn:aws:iam::${ACCOUNT}:role/${id}`,
      'AWS::Logs::LogGroup.Arn': `arn:aws:logs:${region}:${ACCOUNT}:log-group:${id}:*`,
      'AWS::ApiGatewayV2::Api.ApiEndpoint': `https://${id}.execute-api.${region}.amazonaws.com`,
    }
    const value = arns[type]
    if (value === undefined) throw new Error(`Fn::GetAtt ${logicalId}.${name} is not modelled`)
    return value
  }

  /**
   * An `AwsCustomResource` (Custom::AWS) as its provider answers it at deploy time:
   * only `DynamoDB.describeTable` with its output `Table.LatestStreamArn` (the stream
   * ARN of this region's replica, read by the stacks of the regions after the first),
   * called with the provider role's policy. Anything else throws.
   */
  #awsCustomResource(template: StackTemplate, logicalId: string, output: string): string {
    const p = template.resources[logicalId]?.Properties ?? {}
    const call = JSON.parse(String(p.Create)) as {
      service: string
      action: string
      parameters: { TableName?: string }
      outputPaths?: string[]
    }
    if (
      call.service !== 'DynamoDB' ||
      call.action !== 'describeTable' ||
      output !== 'Table.LatestStreamArn' ||
      !(call.outputPaths ?? []).includes(output)
    ) {
      throw new Error(`${logicalId}: ${call.service}.${call.action} ${output} is not modelled`)
    }
    const tableName = String(call.parameters.TableName)
    const tableArn = `arn:aws:dynamodb:${this.region}:${ACCOUNT}:table/${tableName}`
    // The provider runs with its role: the custom resource's policy must allow the call.
    const provider = p.ServiceToken?.['Fn::GetAtt']?.[0] as string
    const role = template.resources[provider]?.Properties.Role?.['Fn::GetAtt']?.[0] as string
    const statements = Object.values(template.resources)
      .filter(
        (r) =>
          r.Type === 'AWS::IAM::Policy' &&
          r.Properties.Roles.some((ref: { Ref?: string }) => ref.Ref === role),
      )
      .flatMap((r) => this.resolve(template, r.Properties.PolicyDocument).Statement)
    if (!isAllowed(statements, 'dynamodb:DescribeTable', tableArn)) {
      throw new Error(`${logicalId}: its provider may not dynamodb:DescribeTable ${tableArn}`)
    }
    if (!this.#tables.has(tableName)) {
      throw new Error(
        `${logicalId}: no table ${tableName} in ${this.region} (deploy the primary first)`,
      )
    }
    return streamArn(this.region, tableName)
  }

  /** Resolves the intrinsics our template writes: Ref, Fn::GetAtt, Fn::Join, Fn::Sub. */
  // biome-ignore lint/suspicious/noExplicitAny: template values are JSON of any shape
  resolve(template: StackTemplate, value: unknown): any {
    if (Array.isArray(value)) return value.map((item) => this.resolve(template, item))
    if (value === null || typeof value !== 'object') return value
    const entries = Object.entries(value)
    const [name = '', argument] = entries[0] ?? []
    if (entries.length !== 1 || !(name === 'Ref' || name.startsWith('Fn::'))) {
      return Object.fromEntries(entries.map(([key, item]) => [key, this.resolve(template, item)]))
    }
    const args = this.resolve(template, argument)
    if (name === 'Fn::GetStackOutput') {
      // A cross-region reference (CDK's `crossRegionReferences`): the output of the stack
      // deployed in that region, as CloudFormation reads it at deploy time.
      const { StackName, Region, OutputName } = args as Record<string, string>
      const cloud = this.#cloudOf(Region as string)
      const stack = cloud.#stacks.get(StackName as string)
      const output = stack?.outputs?.[OutputName as string]
      if (!stack || !output) {
        throw new Error(`Fn::GetStackOutput: no output ${OutputName} of ${StackName} in ${Region}`)
      }
      return cloud.resolve(stack, output.Value)
    }
    if (name === 'Ref') return this.ref(template, args)
    if (name === 'Fn::GetAtt') return this.attribute(template, args[0], args[1])
    if (name === 'Fn::Join') return (args[1] as string[]).join(args[0])
    if (name === 'Fn::Sub' && typeof args === 'string') {
      return args.replace(/\$\{([^}.]+)(?:\.([^}]+))?\}/g, (_, id: string, attribute?: string) =>
        attribute ? this.attribute(template, id, attribute) : this.ref(template, id),
      )
    }
    throw new Error(`${name} is not modelled by the stack harness`)
  }

  /**
   * Creates what deploying a template would, once per cloud: its KMS keys (real
   * keys of the template's KeySpec), and its table in DynamoDB Local from the
   * template's own definition (billing, PITR and deletion protection mean
   * nothing there). Labels ARNs for the reports.
   */
  async provision(template: StackTemplate): Promise<void> {
    if (template.region !== undefined && template.region !== this.region) {
      throw new Error(`${template.stackName} is a stack of ${template.region}, not ${this.region}`)
    }
    this.#stacks.set(template.stackName, template)
    for (const [logicalId, { Type, Properties: p }] of Object.entries(template.resources)) {
      if (Type === 'AWS::KMS::Key') this.#createKey(template, logicalId, p)
      if (Type === 'AWS::KMS::ReplicaKey') this.#createReplicaKey(template, logicalId, p)
      if (Type === 'AWS::KMS::Alias' && !p.AliasName.endsWith('/active')) {
        this.#labels.set(
          this.resolve(template, p.TargetKeyId),
          `key ${p.AliasName.split('/').pop()}`,
        )
      }
      if (Type === 'AWS::Logs::LogGroup') {
        this.#labels.set(this.attribute(template, logicalId, 'Arn'), 'its log group')
      }
      if (Type === 'AWS::Events::EventBus') {
        this.#labels.set(this.attribute(template, logicalId, 'Arn'), 'event bus')
      }
      if (Type === 'AWS::SQS::Queue') {
        this.#labels.set(this.attribute(template, logicalId, 'Arn'), 'dead-letter queue')
      }
      if (Type === 'AWS::DynamoDB::GlobalTable') {
        // CloudFormation creates the table in each replica's region, from its one definition.
        const name = this.ref(template, logicalId)
        for (const { Region } of p.Replicas as { Region: string }[]) {
          await this.#cloudOf(Region).#createTable(name, p)
        }
      }
      if (Type !== 'AWS::DynamoDB::Table') continue
      await this.#createTable(this.ref(template, logicalId), p)
    }
  }

  /** A table in this region's DynamoDB Local from its template definition, once. */
  // biome-ignore lint/suspicious/noExplicitAny: the table's CloudFormation properties
  async #createTable(name: string, p: Record<string, any>): Promise<void> {
    this.#labels.set(`arn:aws:dynamodb:${this.region}:${ACCOUNT}:table/${name}`, 'table')
    if (this.#tables.has(name)) return
    const { AttributeDefinitions, KeySchema, GlobalSecondaryIndexes, BillingMode } = p
    const client = new DynamoDBClient({
      endpoint: this.#dynamodbLocal,
      region: this.region,
      credentials: { accessKeyId: 'provisioning', secretAccessKey: 'provisioning' },
    })
    const stream = p.StreamSpecification && {
      StreamSpecification: { StreamEnabled: true, ...p.StreamSpecification },
    }
    const input = {
      AttributeDefinitions,
      KeySchema,
      GlobalSecondaryIndexes,
      BillingMode,
      ...stream,
    }
    await client.send(new CreateTableCommand({ TableName: name, ...input }))
    this.#indexes.set(
      name,
      (GlobalSecondaryIndexes ?? []).map(
        (index: {
          KeySchema: { AttributeName: string }[]
          Projection?: { ProjectionType?: string }
        }) => ({
          keys: index.KeySchema.map((key) => key.AttributeName),
          projection: index.Projection?.ProjectionType ?? 'ALL',
        }),
      ),
    )
    if (p.TimeToLiveSpecification) {
      const ttl = { TableName: name, TimeToLiveSpecification: p.TimeToLiveSpecification }
      await client.send(new UpdateTimeToLiveCommand(ttl))
    }
    client.destroy()
    this.#tables.add(name)
  }

  /**
   * What a key's own properties decide: what its key policy lets the account's IAM
   * grant (its statements for the account, checked on each request), and its tags
   * (CreateKey's Tags: they stay with the key after it leaves a template).
   */
  // biome-ignore lint/suspicious/noExplicitAny: the key's CloudFormation properties
  #keyPolicy(template: StackTemplate, p: Record<string, any>) {
    const { Statement } = this.resolve(template, p.KeyPolicy)
    const keyPolicy = (Statement as (Statement & { Principal?: { AWS?: string } })[])
      .filter((s) => list(s.Principal?.AWS).includes(`arn:aws:iam::${ACCOUNT}:root`))
      .map(({ Principal: _, ...s }) => s)
    const tags = Object.fromEntries(
      (this.resolve(template, p.Tags ?? []) as { Key: string; Value: string }[]).map(
        ({ Key, Value }) => [`aws:ResourceTag/${Key}`, Value],
      ),
    )
    return { keyPolicy, tags }
  }

  /**
   * A replica of a multi-Region key (AWS::KMS::ReplicaKey): the primary key's
   * material and key id (so the same `kid`), under its own ARN in this region,
   * its own key policy and tags. The primary must exist (its region deployed first).
   */
  // biome-ignore lint/suspicious/noExplicitAny: the key's CloudFormation properties
  #createReplicaKey(template: StackTemplate, logicalId: string, p: Record<string, any>): void {
    const arn = this.attribute(template, logicalId, 'Arn')
    if (this.#keys.has(arn)) return
    const primaryArn = String(this.resolve(template, p.PrimaryKeyArn))
    const primary = this.#cloudOf(primaryArn.split(':')[3] ?? '').#keys.get(primaryArn)
    if (!primary || !primaryArn.includes(':key/mrk-')) {
      throw new Error(`${logicalId}: no multi-Region primary key ${primaryArn}`)
    }
    this.#keys.set(arn, { ...primary, arn, ...this.#keyPolicy(template, p) })
  }

  // biome-ignore lint/suspicious/noExplicitAny: the key's CloudFormation properties
  #createKey(template: StackTemplate, logicalId: string, p: Record<string, any>): void {
    const arn = this.attribute(template, logicalId, 'Arn')
    if (this.#keys.has(arn)) return
    // CloudFormation's defaults: a symmetric encryption key.
    const spec = `${p.KeySpec ?? 'SYMMETRIC_DEFAULT'}/${p.KeyUsage ?? 'ENCRYPT_DECRYPT'}`
    const modelled = [
      'RSA_2048/SIGN_VERIFY',
      'ECC_NIST_P256/SIGN_VERIFY',
      'SYMMETRIC_DEFAULT/ENCRYPT_DECRYPT',
    ]
    if (!modelled.includes(spec)) {
      throw new Error(`${logicalId}: ${spec} is not modelled by the stack harness`)
    }
    const { keyPolicy, tags } = this.#keyPolicy(template, p)
    if (spec === 'SYMMETRIC_DEFAULT/ENCRYPT_DECRYPT') {
      const secret = randomBytes(32)
      this.#keys.set(arn, { arn, spec: 'SYMMETRIC_DEFAULT', secret, keyPolicy, tags })
      // No alias names it: the reports name it by its logical id.
      this.#labels.set(arn, `key ${logicalId.replace(/[0-9A-F]{8}$/, '')}`)
      return
    }
    const pair = p.KeySpec === 'RSA_2048' ? rsaKey() : ecKey()
    this.#keys.set(arn, { arn, spec: p.KeySpec, ...pair, keyPolicy, tags })
  }

  /**
   * What AWS checks when a service acts with a function's role (Lambda's
   * stream poller): one action on one resource, recorded as the function's call.
   */
  authorizeAs(caller: Caller, action: string, resource: string): boolean {
    return this.#authorize(caller, action, resource)
  }

  /** Checks one action on one resource for a caller, and records it. */
  #authorize(
    caller: Caller,
    action: string,
    resource: string,
    context: Record<string, string | readonly string[]> = {},
    /** What else decides (a KMS key's policy): denied when false, whatever IAM allows. */
    alsoAllowed = true,
  ): boolean {
    const allowed = alsoAllowed && isAllowed(caller.statements, action, resource, context)
    const key = `${action} ${resource}`
    const count = caller.calls.get(key) ?? { allowed: 0, denied: 0 }
    if (allowed) count.allowed++
    else count.denied++
    caller.calls.set(key, count)
    return allowed
  }

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const body = Buffer.concat(chunks)
    const invoked = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(req.url ?? '')?.[1]
    if (invoked !== undefined)
      return this.#lambdaInvoke(req, res, decodeURIComponent(invoked), body)
    const target = String(req.headers['x-amz-target'] ?? '')
    const protocol = target.startsWith('TrentService.')
      ? 'kms'
      : target.startsWith('AWSEvents.')
        ? 'events'
        : 'dynamodb'
    const operation = target.split('.')[1] ?? ''
    // The region the request is signed for: this one, or (a DynamoDB item request only)
    // another region's, served there.
    const served = this.#servedIn(req, protocol, operation)
    if (served !== this && served.down) {
      if (served.down === 'drop') req.socket.destroy()
      return
    }
    const input = JSON.parse(body.toString('utf8') || '{}')
    const reply = this.#reply(req, target, input, served)
    const caller = this.#callerOf(req)?.name ?? 'unknown'
    const attempt = Number(/attempt=(\d+)/.exec(String(req.headers['amz-sdk-request']))?.[1] ?? 1)
    const retry = attempt > 1 ? { attempt } : {}
    const elsewhere = served !== this ? { region: served.region } : {}
    if (reply) {
      if (protocol !== 'dynamodb' || 'error' in reply) {
        const error = 'error' in reply ? String(reply.error) : undefined
        this.meter.push({
          caller,
          service: protocol,
          operation,
          ...(error && { error }),
          ...retry,
          ...elsewhere,
        })
      }
      return send(res, protocol, reply)
    }
    // DynamoDB Local answers: ask it for the consumed capacity, and keep the answer as it would be.
    const metered = METERED_OPERATIONS.has(operation) && input.ReturnConsumedCapacity === undefined
    const forwarded = metered
      ? Buffer.from(JSON.stringify({ ...input, ReturnConsumedCapacity: 'INDEXES' }))
      : body
    const headers = { ...req.headers, 'content-length': String(forwarded.length) }
    const transaction = operation === 'TransactWriteItems' ? input.TransactItems : undefined
    const before = transaction ? await this.#imagesOf(transaction) : []
    const upstream = request(served.#dynamodbLocal, { method: 'POST', headers }, async (r) => {
      const parts: Buffer[] = []
      for await (const chunk of r) parts.push(chunk as Buffer)
      let answer = Buffer.concat(parts)
      const status = r.statusCode ?? 500
      const parsed = answer.length ? JSON.parse(answer.toString('utf8')) : {}
      const billed =
        transaction && status === 200
          ? this.#billed(transaction, before, await this.#imagesOf(transaction))
          : undefined
      const error = String(parsed.__type ?? status)
        .split('#')
        .pop()
      this.meter.push({
        caller,
        service: 'dynamodb',
        operation,
        ...(status === 200 ? consumed(parsed.ConsumedCapacity) : { error }),
        ...(billed !== undefined && { billed }),
        ...retry,
        ...elsewhere,
      })
      if (metered && parsed.ConsumedCapacity !== undefined) {
        delete parsed.ConsumedCapacity
        answer = Buffer.from(JSON.stringify(parsed))
      }
      res.writeHead(status, { ...r.headers, 'content-length': String(answer.length) })
      res.end(answer)
    })
    upstream.on('error', (error) => send(res, protocol, fail('InternalServerError', error.message)))
    upstream.end(forwarded)
  }

  /**
   * Lambda's `Invoke` (REST JSON), synchronous only: in the region the request is signed
   * for (its SigV4 credential scope: the SDK's client for another region sends it here,
   * through `AWS_ENDPOINT_URL_LAMBDA`), authorized as `lambda:InvokeFunction` on the
   * function's ARN with the caller's policy. A region that is `down` answers nothing (the
   * connection is dropped); a function that is not there is ResourceNotFoundException; a
   * function that fails answers 200 with `X-Amz-Function-Error`, as Lambda does.
   */
  async #lambdaInvoke(
    req: IncomingMessage,
    res: ServerResponse,
    name: string,
    body: Buffer,
  ): Promise<void> {
    const reply = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, {
        'content-type': 'application/json',
        'x-amzn-requestid': randomBytes(8).toString('hex'),
        ...headers,
      })
      res.end(payload === undefined ? 'null' : JSON.stringify(payload))
    }
    const refuse = (status: number, type: string, message: string) => {
      this.meter.push({
        caller: caller?.name ?? 'unknown',
        service: 'lambda',
        operation: 'Invoke',
        error: type,
      })
      reply(status, { Type: 'User', message }, { 'x-amzn-errortype': type })
    }
    const caller = this.#callerOf(req)
    if (!caller) {
      return refuse(
        403,
        'UnrecognizedClientException',
        'The security token included in the request is invalid.',
      )
    }
    const type = req.headers['x-amz-invocation-type'] ?? 'RequestResponse'
    if (type !== 'RequestResponse' || name.includes(':')) {
      throw new Error(`Invoke ${type} of ${name} is not modelled by the stack harness`)
    }
    const region = /Credential=[^/]+\/\d{8}\/([^/]+)\/lambda\//.exec(
      String(req.headers.authorization),
    )?.[1]
    const home =
      region === undefined ? undefined : region === this.region ? this : this.#peers.get(region)
    // Nothing answers in a lost region (or one that is not there); `stop` closes what hangs.
    if (!home || home.down) this.unanswered.push({ caller: caller.name, region: String(region) })
    if (home?.down === 'hang') return
    if (!home || home.down) {
      req.socket.destroy()
      return
    }
    const arn = `arn:aws:lambda:${home.region}:${ACCOUNT}:function:${name}`
    if (!this.#authorize(caller, 'lambda:InvokeFunction', arn)) {
      return refuse(
        403,
        'AccessDeniedException',
        `User: arn:aws:sts::${ACCOUNT}:assumed-role/${caller.name}/${caller.name} is not authorized to perform: lambda:InvokeFunction on resource: ${arn} because no identity-based policy allows the lambda:InvokeFunction action`,
      )
    }
    const fn = home.#functions.get(name)
    if (!fn) return refuse(404, 'ResourceNotFoundException', `Function not found: ${arn}`)
    this.meter.push({ caller: caller.name, service: 'lambda', operation: 'Invoke' })
    try {
      reply(200, await fn.invoke(JSON.parse(body.toString('utf8') || 'null')), {
        'x-amz-executed-version': '$LATEST',
      })
    } catch (error) {
      reply(
        200,
        { errorType: 'Error', errorMessage: (error as Error).message },
        { 'x-amz-function-error': 'Unhandled' },
      )
    }
  }

  /** The items a transaction names, as they are now (a strongly consistent read each). */
  async #imagesOf(
    items: readonly Record<string, AwsItemAction>[],
  ): Promise<(Record<string, unknown> | undefined)[]> {
    this.#reader ??= new DynamoDBClient({
      endpoint: this.#dynamodbLocal,
      region: this.region,
      credentials: { accessKeyId: 'meter', secretAccessKey: 'meter' },
    })
    const reader = this.#reader
    return Promise.all(
      items.map(async (item) => {
        const [, action] = Object.entries(item)[0] as [string, AwsItemAction]
        const key = action.Key ?? keyOf(action.Item ?? {})
        const { Item } = await reader.send(
          new GetItemCommand({
            TableName: action.TableName,
            Key: key as Record<string, AttributeValue>,
            ConsistentRead: true,
          }),
        )
        return Item
      }),
    )
  }

  /**
   * What AWS bills a committed TransactWriteItems, by its published rules: each
   * item 2 write units per KB, sized as the larger of before and after (a
   * ConditionCheck's item as it stands); each index entry written 2 per KB:
   * added, removed, moved (2), or rewritten when the index projects every
   * attribute and the item changed.
   */
  #billed(
    items: readonly Record<string, AwsItemAction>[],
    before: readonly (Record<string, unknown> | undefined)[],
    after: readonly (Record<string, unknown> | undefined)[],
  ): number {
    const units = (bytes: number) => Math.max(1, Math.ceil(bytes / 1024))
    let billed = 0
    for (const [i, item] of items.entries()) {
      const [kind, action] = Object.entries(item)[0] as [string, AwsItemAction]
      const was = before[i]
      const now = kind === 'ConditionCheck' ? was : after[i]
      billed += 2 * units(Math.max(attributeValueSize(was), attributeValueSize(now)))
      if (kind === 'ConditionCheck') continue
      for (const index of this.#indexes.get(action.TableName) ?? []) {
        const inBefore = index.keys.every((key) => was?.[key] !== undefined)
        const inAfter = index.keys.every((key) => now?.[key] !== undefined)
        const moved =
          inBefore &&
          inAfter &&
          index.keys.some((key) => JSON.stringify(was?.[key]) !== JSON.stringify(now?.[key]))
        const rewritten =
          inBefore &&
          inAfter &&
          !moved &&
          index.projection === 'ALL' &&
          JSON.stringify(was) !== JSON.stringify(now)
        const writes = moved ? 2 : (inBefore !== inAfter ? 1 : 0) + (rewritten ? 1 : 0)
        billed += 2 * writes * units(attributeValueSize(now ?? was))
      }
    }
    return billed
  }

  /** The function whose access key signed the request. */
  #callerOf(req: IncomingMessage): Caller | undefined {
    const accessKeyId = /Credential=([^/]+)\//.exec(String(req.headers.authorization))?.[1] ?? ''
    return this.callers.get(accessKeyId)
  }

  /**
   * The region a request is served in: the one its SigV4 credential scope names. Another
   * linked region's only for what a function sends there (a DynamoDB client of another
   * region: `ENVELOPE_KEY_PAIR_REGION`'s `GetItem` and `PutItem` in the primary's replica),
   * which reaches that region's DynamoDB Local under IAM on that region's table ARN;
   * anything else signed for another region throws, as the harness does not model it.
   */
  #servedIn(req: IncomingMessage, protocol: string, operation: string): Cloud {
    const region = /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(String(req.headers.authorization))?.[1]
    if (region === undefined || region === this.region) return this
    if (protocol !== 'dynamodb' || !CROSS_REGION_OPERATIONS.has(operation)) {
      throw new Error(
        `${protocol} ${operation} signed for ${region} in ${this.region} is not modelled by the stack harness`,
      )
    }
    return this.#cloudOf(region)
  }

  /** KMS's answer, or DynamoDB's refusal; `undefined` when DynamoDB Local should answer. */
  #reply(
    req: IncomingMessage,
    target: string,
    // biome-ignore lint/suspicious/noExplicitAny: the request as the SDK serialized it
    input: any,
    served: Cloud = this,
  ): AwsReply | undefined {
    // SigV4 names the access key in `Credential=<AKID>/<date>/<region>/<service>/aws4_request`.
    const caller = this.#callerOf(req)
    if (!caller) {
      return fail(
        'UnrecognizedClientException',
        'The security token included in the request is invalid.',
      )
    }
    const denied = (action: string, resource: string) =>
      fail(
        'AccessDeniedException',
        `User: arn:aws:sts::${ACCOUNT}:assumed-role/${caller.name}/${caller.name} is not authorized to perform: ${action} on resource: ${resource} because no identity-based policy allows the ${action} action`,
      )
    const [service, operation = ''] = target.split('.')
    if (service === 'TrentService') return this.#kms(caller, operation, input, denied)
    if (service === 'AWSEvents') return this.#events(caller, operation, input, denied)
    for (const [action, resource, leadingKeys] of dynamodbChecks(operation, input, served.region)) {
      const context: Record<string, string[]> = leadingKeys
        ? { 'dynamodb:LeadingKeys': leadingKeys }
        : {}
      if (!this.#authorize(caller, action, resource, context)) return denied(action, resource)
    }
    if (served.#throttled('dynamodb')) {
      return fail(
        'ProvisionedThroughputExceededException',
        'The level of configured provisioned throughput for the table was exceeded.',
      )
    }
    return undefined
  }

  /** PutEvents: each entry authorized on the bus it names, and kept. */
  #events(
    caller: Caller,
    operation: string,
    // biome-ignore lint/suspicious/noExplicitAny: the request as the SDK serialized it
    input: any,
    denied: (action: string, resource: string) => AwsReply,
  ): AwsReply {
    if (operation !== 'PutEvents') return fail('UnknownOperationException', operation)
    const entries = (input.Entries ?? []) as Record<string, string>[]
    const busArn = (name = 'default') =>
      name.startsWith('arn:') ? name : `arn:aws:events:${this.region}:${ACCOUNT}:event-bus/${name}`
    for (const entry of entries) {
      const arn = busArn(entry.EventBusName)
      if (!this.#authorize(caller, 'events:PutEvents', arn)) return denied('events:PutEvents', arn)
    }
    for (const entry of entries) {
      this.busEntries.push({
        busArn: busArn(entry.EventBusName),
        source: String(entry.Source),
        detailType: String(entry.DetailType),
        detail: String(entry.Detail),
      })
    }
    return {
      FailedEntryCount: 0,
      Entries: entries.map(() => ({ EventId: randomBytes(8).toString('hex') })),
    }
  }

  /** A multi-Region key's ARN in this region (the same key id); any other key's as it is. */
  #copyHere(arn: string): string {
    return isMultiRegionKey(arn) ? arn.replace(/^(arn:aws:kms:)[^:]*:/, `$1${this.region}:`) : arn
  }

  #kms(
    caller: Caller,
    operation: string,
    // biome-ignore lint/suspicious/noExplicitAny: the request as the SDK serialized it
    input: any,
    denied: (action: string, resource: string) => AwsReply,
  ): AwsReply {
    // Decrypt may name no key: the ciphertext blob does (a multi-Region key's: this
    // region's copy, as KMS decrypts with the related key of the region called).
    const keyId = String(
      input.KeyId ?? (operation === 'Decrypt' ? this.#copyHere(blobKeyArn(input)) : ''),
    )
    const alias = /^(arn:aws:kms:[^:]*:[^:]*:)?(alias\/.+)$/.exec(keyId)?.[2]
    const arn = alias
      ? this.aliases.get(alias)
      : keyId.startsWith('arn:')
        ? keyId
        : `arn:aws:kms:${this.region}:${ACCOUNT}:key/${keyId}`
    const key = arn === undefined ? undefined : this.#keys.get(arn)
    if (!key) return fail('NotFoundException', `Key '${keyId}' does not exist`)
    const context: Record<string, string> = {
      ...('tags' in key ? key.tags : {}),
      ...(alias && { 'kms:RequestAlias': alias }),
      ...(operation === 'Sign' && {
        'kms:SigningAlgorithm': String(input.SigningAlgorithm),
        'kms:MessageType': String(input.MessageType ?? 'RAW'),
      }),
      // Each entry of the encryption context is a condition key of its own.
      ...Object.fromEntries(
        Object.entries((input.EncryptionContext ?? {}) as Record<string, string>).map(
          ([name, value]) => [`kms:EncryptionContext:${name}`, value],
        ),
      ),
      ...(operation === 'GenerateDataKeyPairWithoutPlaintext' && {
        'kms:DataKeyPairSpec': String(input.KeyPairSpec),
      }),
    }
    // KMS authorizes on the key's ARN, whatever name the caller used.
    const action = `kms:${operation}`
    // Both the key policy (for the account: it names no other principal) and the caller's
    // IAM policy must allow it; either one refusing is the caller's denied call.
    const byKeyPolicy = isAllowed(key.keyPolicy, action, key.arn, context)
    if (!this.#authorize(caller, action, key.arn, context, byKeyPolicy)) {
      return denied(action, key.arn)
    }
    // KMS's request quota is shared by its cryptographic operations.
    if (operation !== 'GetPublicKey' && this.#throttled('kms')) {
      return fail('ThrottlingException', 'Rate exceeded')
    }
    if (key.spec === 'SYMMETRIC_DEFAULT') return dataKeys(key, operation, input)
    if (/^(GenerateDataKey|Decrypt)/.test(operation)) {
      return fail('InvalidKeyUsageException', `${key.spec} keys do not encrypt`)
    }
    const algorithm = key.spec === 'RSA_2048' ? 'RSASSA_PKCS1_V1_5_SHA_256' : 'ECDSA_SHA_256'
    if (operation === 'GetPublicKey') {
      return {
        KeyId: key.arn,
        KeySpec: key.spec,
        KeyUsage: 'SIGN_VERIFY',
        SigningAlgorithms: [algorithm],
        PublicKey: key.publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
      }
    }
    if (operation !== 'Sign') return fail('UnknownOperationException', operation)
    if (input.SigningAlgorithm !== algorithm) {
      return fail('InvalidKeyUsageException', `${input.SigningAlgorithm} does not fit ${key.spec}`)
    }
    const message = Buffer.from(String(input.Message), 'base64')
    const digest =
      input.MessageType === 'DIGEST' ? message : createHash('sha256').update(message).digest()
    if (digest.length !== 32) return fail('ValidationException', 'Digest is invalid length')
    const signature =
      key.spec === 'RSA_2048'
        ? privateEncrypt(
            { key: key.privateKey, padding: constants.RSA_PKCS1_PADDING },
            Buffer.concat([SHA256_DIGEST_INFO, digest]),
          )
        : ecdsaSignDigest(key.privateKey, digest, randomBytes(16).toString('hex'))
    return { KeyId: key.arn, SigningAlgorithm: algorithm, Signature: signature.toString('base64') }
  }
}

/**
 * KMS's symmetric ciphertext blob, as the stand-in makes it: the key's ARN,
 * then AES-256-GCM of the plaintext with the encryption context as additional
 * data (so a blob opens only under its own key and context, as in KMS), padded
 * to the size KMS's own blobs have (152 bytes of overhead: 184 for a 32-byte
 * data key), so that what the service stores is as large as in AWS.
 */
const KMS_BLOB_OVERHEAD = 152

function wrap(key: SymmetricKey, plaintext: Buffer, context: string): Buffer {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key.secret, iv)
  cipher.setAAD(Buffer.from(context))
  const sealed = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()])
  const arn = Buffer.from(key.arn)
  const length = Buffer.alloc(2)
  length.writeUInt16BE(sealed.length)
  const blob = Buffer.concat([Buffer.from([arn.length]), arn, iv, length, sealed])
  const padding = Math.max(0, KMS_BLOB_OVERHEAD + plaintext.length - blob.length)
  return Buffer.concat([blob, Buffer.alloc(padding)])
}

/** The plaintext of a blob `wrap` made under this key and context; throws for any other. */
function unwrap(key: SymmetricKey, blob: Buffer, context: string): Buffer {
  const body = blob.subarray(1 + (blob[0] ?? 0))
  const sealed = body.subarray(14, 14 + body.readUInt16BE(12))
  const decipher = createDecipheriv('aes-256-gcm', key.secret, body.subarray(0, 12))
  decipher.setAAD(Buffer.from(context))
  decipher.setAuthTag(sealed.subarray(sealed.length - 16))
  return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()])
}

/** Key pairs generated ahead (`Cloud.start`), handed out once each. */
const PAIRS: Record<'RSA_2048' | 'ECC_NIST_P256', ReturnType<typeof rsaKey>[]> = {
  RSA_2048: [],
  ECC_NIST_P256: [],
}

/**
 * KMS data keys under a symmetric key (`wrap`): GenerateDataKey, a key pair
 * with its private key wrapped (GenerateDataKeyPairWithoutPlaintext: PKCS #8
 * DER, as KMS wraps it), and Decrypt.
 */
// biome-ignore lint/suspicious/noExplicitAny: the request as the SDK serialized it
function dataKeys(key: SymmetricKey, operation: string, input: any): AwsReply {
  const context = JSON.stringify(
    Object.entries((input.EncryptionContext ?? {}) as Record<string, string>).sort(([a], [b]) =>
      a.localeCompare(b),
    ),
  )
  if (operation === 'GenerateDataKey') {
    if (input.KeySpec !== 'AES_256') return fail('ValidationException', 'KeySpec must be AES_256')
    const plaintext = randomBytes(32)
    return {
      KeyId: key.arn,
      Plaintext: plaintext.toString('base64'),
      CiphertextBlob: wrap(key, plaintext, context).toString('base64'),
    }
  }
  if (operation === 'GenerateDataKeyPairWithoutPlaintext') {
    const spec = String(input.KeyPairSpec)
    if (spec !== 'RSA_2048' && spec !== 'ECC_NIST_P256') {
      return fail('ValidationException', `KeyPairSpec ${spec} is not modelled`)
    }
    const pair = PAIRS[spec].shift() ?? (spec === 'RSA_2048' ? rsaKey() : ecKey())
    const privateKey = pair.privateKey.export({ format: 'der', type: 'pkcs8' })
    return {
      KeyId: key.arn,
      KeyPairSpec: input.KeyPairSpec,
      PublicKey: pair.publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
      PrivateKeyCiphertextBlob: wrap(key, privateKey, context).toString('base64'),
    }
  }
  if (operation !== 'Decrypt') return fail('UnknownOperationException', operation)
  if (!relatedKeys(blobKeyArn(input), key.arn)) return fail('IncorrectKeyException', 'wrong key')
  try {
    const plaintext = unwrap(key, Buffer.from(String(input.CiphertextBlob), 'base64'), context)
    return { KeyId: key.arn, Plaintext: plaintext.toString('base64') }
  } catch {
    return fail('InvalidCiphertextException', 'the ciphertext is invalid')
  }
}

/** One action of a TransactWriteItems, as the SDK serialized it. */
interface AwsItemAction {
  readonly TableName: string
  readonly Key?: Record<string, unknown>
  readonly Item?: Record<string, unknown>
}

/** The key of an item in DynamoDB JSON: our tables' `pk` and `sk`. */
const keyOf = (item: Record<string, unknown>) => ({ pk: item.pk, sk: item.sk }) as never

/**
 * An item's size in DynamoDB JSON, as DynamoDB counts it: each name's UTF-8
 * bytes plus its value (strings their bytes, numbers (digits / 2) + 1,
 * binaries their bytes, booleans and nulls 1, lists and maps 3 + 1 per element
 * + their elements).
 */
function attributeValueSize(item: Record<string, unknown> | undefined): number {
  if (!item) return 0
  const value = (v: Record<string, unknown>): number => {
    if ('S' in v) return Buffer.byteLength(String(v.S))
    if ('N' in v) {
      const digits = String(v.N).replace(/[-.]/g, '').replace(/^0+/, '').replace(/0+$/, '')
      return Math.ceil(Math.max(digits.length, 1) / 2) + 1
    }
    if ('B' in v) {
      return v.B instanceof Uint8Array ? v.B.length : Buffer.from(String(v.B), 'base64').length
    }
    if ('BOOL' in v || 'NULL' in v) return 1
    if ('L' in v)
      return 3 + (v.L as Record<string, unknown>[]).reduce((n, e) => n + 1 + value(e), 0)
    if ('M' in v) {
      const entries = Object.entries(v.M as Record<string, Record<string, unknown>>)
      return 3 + entries.reduce((n, [k, e]) => n + 1 + Buffer.byteLength(k) + value(e), 0)
    }
    if ('SS' in v) return (v.SS as string[]).reduce((n, e) => n + Buffer.byteLength(e), 0)
    throw new Error(`attribute ${JSON.stringify(v)} is not modelled by the meter`)
  }
  return Object.entries(item).reduce(
    (n, [name, v]) => n + Buffer.byteLength(name) + value(v as Record<string, unknown>),
    0,
  )
}

/** Capacity on the table and on each index, summed over the tables an answer names. */
function consumed(capacity: unknown): Pick<MeteredCall, 'table' | 'indexes'> {
  type Entry = {
    CapacityUnits?: number
    Table?: { CapacityUnits?: number }
    GlobalSecondaryIndexes?: Record<string, { CapacityUnits?: number }>
  }
  const entries = (Array.isArray(capacity) ? capacity : capacity ? [capacity] : []) as Entry[]
  let table = 0
  const indexes: Record<string, number> = {}
  for (const entry of entries) {
    table += entry.Table?.CapacityUnits ?? entry.CapacityUnits ?? 0
    for (const [name, units] of Object.entries(entry.GlobalSecondaryIndexes ?? {})) {
      indexes[name] = (indexes[name] ?? 0) + (units.CapacityUnits ?? 0)
    }
  }
  return { table, indexes }
}

/** The stream ARN of a table in a region: one stream per table here, under one label. */
const streamArn = (region: string, table: string) =>
  `arn:aws:dynamodb:${region}:${ACCOUNT}:table/${table}/stream/harness`

/**
 * Whether a ciphertext made under the key `made` opens under the key `opening`: the same
 * key, or related multi-Region keys (one `mrk-` key id and account, any region: they share
 * their key material, and KMS decrypts under either).
 */
function relatedKeys(made: string, opening: string): boolean {
  if (made === opening) return true
  const [, , , , account, id] = made.split(':')
  const [, , , , otherAccount, otherId] = opening.split(':')
  return isMultiRegionKey(made) && account === otherAccount && id === otherId
}

const isMultiRegionKey = (arn: string) => /^arn:aws:kms:[^:]+:\d+:key\/mrk-/.test(arn)

/** The key ARN a data-key blob names (see `dataKeys`). */
// biome-ignore lint/suspicious/noExplicitAny: the request as the SDK serialized it
function blobKeyArn(input: any): string {
  const blob = Buffer.from(String(input.CiphertextBlob ?? ''), 'base64')
  return blob.subarray(1, 1 + (blob[0] ?? 0)).toString()
}

/**
 * The IAM actions and resources a DynamoDB request needs, each with the partition keys
 * it reaches (`dynamodb:LeadingKeys`). A transaction is authorized per item action; a
 * batch once per table, with every key it reads; a query on the table with the partition
 * its key condition names; a query on an index on the index's ARN, with no leading key of
 * the table.
 */
export function dynamodbChecks(
  operation: string,
  // biome-ignore lint/suspicious/noExplicitAny: the request as the SDK serialized it
  input: any,
  region = REGION,
): [string, string, string[]?][] {
  const table = (name: string) => `arn:aws:dynamodb:${region}:${ACCOUNT}:table/${name}`
  const pk = TABLE_SCHEMA.partitionKey
  // biome-ignore lint/suspicious/noExplicitAny: an attribute map as the SDK serialized it
  const leading = (item: any): string[] => (item?.[pk]?.S !== undefined ? [item[pk].S] : [])
  const perItem: Record<string, string> = {
    Put: 'PutItem',
    Update: 'UpdateItem',
    Delete: 'DeleteItem',
    ConditionCheck: 'ConditionCheckItem',
    Get: 'GetItem',
  }
  if (operation === 'TransactWriteItems' || operation === 'TransactGetItems') {
    return (input.TransactItems as Record<string, { TableName: string }>[]).map((item) => {
      // biome-ignore lint/suspicious/noExplicitAny: one transaction item
      const [kind, body] = Object.entries(item)[0] as [string, any]
      return [`dynamodb:${perItem[kind]}`, table(body.TableName), leading(body.Item ?? body.Key)]
    })
  }
  if (operation === 'BatchGetItem' || operation === 'BatchWriteItem') {
    // biome-ignore lint/suspicious/noExplicitAny: a batch's items for one table
    return Object.entries(input.RequestItems).map(([name, request]: [string, any]) => [
      `dynamodb:${operation}`,
      table(name),
      // biome-ignore lint/suspicious/noExplicitAny: a key, or a write request
      (request.Keys ?? request).flatMap((key: any) =>
        leading(key.PutRequest?.Item ?? key.DeleteRequest?.Key ?? key),
      ),
    ])
  }
  const resource = input.TableName ? table(input.TableName) : '*'
  if (input.IndexName) return [[`dynamodb:${operation}`, `${resource}/index/${input.IndexName}`]]
  if (operation === 'Query') {
    // A query on the table reaches the one partition its key condition names.
    const names: Record<string, string> = input.ExpressionAttributeNames ?? {}
    const named = (name: string) => names[name] ?? name
    const found = /([#\w]+)\s*=\s*(:\w+)/.exec(String(input.KeyConditionExpression ?? ''))
    const value = found && named(found[1] as string) === pk ? found[2] : undefined
    const partition = value ? input.ExpressionAttributeValues?.[value]?.S : undefined
    return [[`dynamodb:${operation}`, resource, partition !== undefined ? [partition] : []]]
  }
  const keys = input.Item ?? input.Key
  return [
    keys ? [`dynamodb:${operation}`, resource, leading(keys)] : [`dynamodb:${operation}`, resource],
  ]
}

/** A JSON protocol answer: a result, or an error as the service names it. */
type AwsReply = Record<string, unknown> | { readonly error: string; readonly message: string }

const fail = (error: string, message: string): AwsReply => ({ error, message })

function send(res: ServerResponse, protocol: 'kms' | 'events' | 'dynamodb', reply: AwsReply): void {
  const failed = 'error' in reply && typeof reply.error === 'string'
  // KMS and EventBridge (JSON 1.1) name their errors bare, DynamoDB (JSON 1.0) in the coral namespace.
  const json11 = protocol !== 'dynamodb'
  const type = json11 ? reply.error : `com.amazon.coral.service#${reply.error}`
  res.writeHead(failed ? 400 : 200, {
    'Content-Type': `application/x-amz-json-${json11 ? '1.1' : '1.0'}`,
    'x-amzn-RequestId': randomBytes(8).toString('hex'),
  })
  res.end(JSON.stringify(failed ? { __type: type, message: reply.message } : reply))
}
