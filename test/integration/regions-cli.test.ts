/**
 * `npm run regions`, the operators' switch of `failover: 'adopt'`, run as a person would:
 * a child process against a table on DynamoDB Local; what it writes is what the token
 * functions read (core/regions.ts `lostRegions`).
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:http'
import { beforeAll, describe, expect, it } from 'vitest'
import { DynamoRegionSwitch } from '../../functions/adapters/dynamodb/regions.js'
import { lostRegions } from '../../functions/core/regions.js'
import { FakeClock } from '../support/clock.js'
import { createTestTable } from '../support/dynamo.js'

const REGIONS_CLI = [process.execPath, '--import', 'tsx', 'bin/regions.ts']
let table: string
let store: DynamoRegionSwitch

beforeAll(async () => {
  const created = await createTestTable()
  table = created.tableName
  store = new DynamoRegionSwitch(created.client, table)
})

async function run(args: readonly string[]) {
  const [command, ...rest] = REGIONS_CLI as [string, ...string[]]
  const child = spawn(command, [...rest, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => {
    stdout += chunk
  })
  child.stderr.on('data', (chunk) => {
    stderr += chunk
  })
  const [code] = await once(child, 'close')
  return { code, stdout, stderr }
}

const target = () => ['--table', table, '--endpoint', process.env.DYNAMODB_ENDPOINT as string]

describe('npm run regions', () => {
  it('prints its usage with --help, and refuses a call without a region or with a bad one', async () => {
    const help = await run(['--help'])
    expect(help.code).toBe(0)
    for (const word of ['lost', 'restore', 'status', '--by', '--table', '--endpoint']) {
      expect(help.stdout).toContain(word)
    }
    const missing = await run(['lost'])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain('usage: npm run regions -- ')
    const bad = await run(['lost', 'Europe', ...target()])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain('not an AWS region name: Europe')
  })

  it('declares a region lost, with who, and the token functions’ reading of the switch sees it', async () => {
    const declared = await run(['lost', 'eu-west-1', '--by', 'alice', ...target()])
    expect(declared.code, declared.stderr).toBe(0)
    expect(declared.stdout).toContain('declared eu-west-1 lost (by alice)')
    expect(await store.findRegionDeclaration('eu-west-1')).toMatchObject({
      region: 'eu-west-1',
      state: 'lost',
      by: 'alice',
    })
    expect(await lostRegions(store, new FakeClock()).isLost('eu-west-1')).toBe(true)
    // Only that region.
    expect(await lostRegions(store, new FakeClock()).isLost('us-east-1')).toBe(false)
    const status = await run(['status', 'eu-west-1', ...target()])
    expect(status.stdout).toMatch(/^eu-west-1: lost \(by alice at \d{4}-/)
  })

  it('restores a region: the switch reads not lost once a token function’s cache lapses', async () => {
    const clock = new FakeClock()
    const reading = lostRegions(store, clock)
    await run(['lost', 'ap-south-1', '--by', 'bob', ...target()])
    expect(await reading.isLost('ap-south-1')).toBe(true)
    const restored = await run(['restore', 'ap-south-1', '--by', 'bob', ...target()])
    expect(restored.code, restored.stderr).toBe(0)
    expect(restored.stdout).toContain('declared ap-south-1 restored (by bob)')
    clock.advance(11)
    expect(await reading.isLost('ap-south-1')).toBe(false)
    expect((await run(['status', 'sa-east-1', ...target()])).stdout).toContain(
      'sa-east-1: never declared (not lost)',
    )
  })

  it('says DynamoDB cannot be reached, and a table that is not there, as npm run users does', async () => {
    const server = createServer().listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as { port: number }
    await new Promise((resolve) => server.close(resolve))
    const unreachable = await run(['status', 'eu-west-1', '--endpoint', `http://127.0.0.1:${port}`])
    expect(unreachable.code).toBe(1)
    expect(unreachable.stderr.trim()).toBe(
      `regions: cannot reach DynamoDB at http://127.0.0.1:${port} (is \`npm start\` running?)`,
    )
    const missing = await run([
      'status',
      'eu-west-1',
      '--table',
      'no-such-table',
      '--endpoint',
      process.env.DYNAMODB_ENDPOINT as string,
    ])
    expect(missing.code).toBe(1)
    expect(missing.stderr.trim()).toBe('regions: table no-such-table not found')
  })
})
