/**
 * The table a command-line tool works on (`npm run users`, `npm run regions`): the local
 * table of a running `npm start`, or a deployed table with the usual AWS chain, and what to
 * tell the person at the terminal when a call to it fails.
 */
import { DynamoDBClient, ResourceNotFoundException } from '@aws-sdk/client-dynamodb'
import { OAuthError } from '../functions/core/errors.js'
import { LOCAL_TABLE, loadLocalConfig } from '../local/config.js'

export interface CliTable {
  readonly client: DynamoDBClient
  readonly table: string
  /** Where DynamoDB is reached, when not AWS's own endpoint. */
  readonly endpoint: string | undefined
  /** The local table (no `--table`). */
  readonly local: boolean
}

/** The tool's `--table` and `--endpoint`: no `--table` is the local table. */
export function openTable(options: { table?: string; endpoint?: string }): CliTable {
  const local = options.table === undefined
  const endpoint =
    options.endpoint ?? (local ? `http://127.0.0.1:${loadLocalConfig().dynamodbPort}` : undefined)
  const client = new DynamoDBClient({
    ...(endpoint ? { endpoint } : {}),
    // DynamoDB Local accepts any credentials; a deployed table uses the usual chain.
    ...(local
      ? { region: 'local', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
      : {}),
  })
  return { client, table: options.table ?? LOCAL_TABLE, endpoint, local }
}

/**
 * A deployed table needs a region and credentials from the usual AWS chain: say which is
 * missing before anything else (a password prompt), instead of the SDK's error from the
 * first call. Nothing to check for the local table.
 */
export async function assertAwsAccess({ client, local }: CliTable): Promise<void> {
  if (local) return
  const region = await client.config.region().catch(() => undefined)
  if (!region) {
    throw new Error(
      'no AWS region for the table: set AWS_REGION (or AWS_PROFILE, with a region in its profile)',
    )
  }
  try {
    await client.config.credentials()
  } catch {
    throw new Error(
      `no AWS credentials for the table in ${region}: set AWS_PROFILE (after aws sso login, if it uses SSO), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`,
    )
  }
}

/** What to tell the person at the terminal: the DynamoDB reason, not the HTTP answer. */
export function explain(error: unknown, target: CliTable): string {
  const cause = error instanceof Error ? error.cause : undefined
  if (cause instanceof ResourceNotFoundException) return `table ${target.table} not found`
  if (target.endpoint && (cause as NodeJS.ErrnoException | undefined)?.code === 'ECONNREFUSED') {
    const hint = target.local ? ' (is `npm start` running?)' : ''
    return `cannot reach DynamoDB at ${target.endpoint}${hint}`
  }
  const name = (cause as Error | undefined)?.name ?? ''
  if (/^(ExpiredToken|UnrecognizedClient|InvalidSignature|AccessDenied)/.test(name)) {
    return `AWS refused the call (${name}): check the credentials and their permissions on table ${target.table}`
  }
  if (error instanceof OAuthError) return error.detail ?? error.description
  return error instanceof Error ? error.message : String(error)
}
