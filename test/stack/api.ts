/**
 * A client of a deployed stack's HTTP front, as an app would call it, and the
 * operator's one step before that: a user in the stack's table.
 */
import { randomBytes } from 'node:crypto'
import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { DynamoUsers } from '../../functions/adapters/dynamodb/users.js'
import { hashPassword } from '../../functions/core/passwords.js'
import { newUserId } from '../../functions/core/refresh-token.js'
import { recordSecret } from '../support/secrets.js'
import type { Deployment } from './deployment.js'

export const PASSWORD = 'stack harness password'
/** The demo clients are what `cdk synth` deploys by default (clients.local.json). */
export const NATIVE_CLIENT = 'demo-native'

let hash: Promise<string> | undefined

/** A new active user in the deployment's table, written as `npm run users -- add --table` would. */
export async function seedUser(
  deployment: Deployment,
  dynamodbLocal: string,
  roles = ['reader'],
): Promise<string> {
  recordSecret(PASSWORD)
  hash ??= hashPassword(PASSWORD) // scrypt costs ~0.5 s: once per file
  const username = `user-${randomBytes(4).toString('hex')}`
  const client = new DynamoDBClient({
    endpoint: dynamodbLocal,
    region: 'local',
    credentials: { accessKeyId: 'operator', secretAccessKey: 'operator' },
  })
  const created = await new DynamoUsers(client, deployment.tableName).createUser({
    sub: newUserId(),
    username,
    passwordHash: await hash,
    roles,
    status: 'active',
    createdAt: Date.now(),
  })
  client.destroy()
  if (!created) throw new Error(`user ${username} exists`)
  return username
}

export interface Reply {
  readonly status: number
  readonly headers: Headers
  // biome-ignore lint/suspicious/noExplicitAny: answers are inspected freely
  readonly body: any
}

export interface Tokens {
  readonly access_token: string
  readonly refresh_token: string
}

/** Requests to the deployment's front; every token it sees is recorded for the secrets audit. */
export function client(deployment: Deployment) {
  async function call(
    method: string,
    path: string,
    init: { form?: Record<string, string>; token?: string; headers?: Record<string, string> } = {},
  ): Promise<Reply> {
    const response = await fetch(`${deployment.url}${path}`, {
      method,
      headers: {
        ...(init.form && { 'content-type': 'application/x-www-form-urlencoded' }),
        ...(init.token && { authorization: `Bearer ${init.token}` }),
        ...init.headers,
      },
      ...(init.form && { body: new URLSearchParams(init.form).toString() }),
    })
    const text = await response.text()
    const body = text ? JSON.parse(text) : undefined
    const cookies = response.headers.getSetCookie().map((c) => /^[^=]+=([^;]*)/.exec(c)?.[1])
    recordSecret(body?.access_token, body?.refresh_token, ...cookies)
    return { status: response.status, headers: response.headers, body }
  }
  const form = (fields: Record<string, string>) => ({
    form: { ...fields, client_id: NATIVE_CLIENT },
  })
  const login = (username: string, password = PASSWORD) =>
    call('POST', '/login', form({ username, password }))
  return {
    call,
    login,
    refresh: (refresh_token: string) =>
      call('POST', '/token', form({ grant_type: 'refresh_token', refresh_token })),
    revoke: (token: string) => call('POST', '/revoke', form({ token })),
    me: (token?: string) => call('GET', '/me', token === undefined ? {} : { token }),
    /** Logs in and returns the tokens, failing loudly otherwise. */
    async session(username: string): Promise<Tokens> {
      const reply = await login(username)
      if (reply.status !== 200) throw new Error(`login answered ${reply.status}`)
      return reply.body
    },
  }
}
