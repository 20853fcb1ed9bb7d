import { writeSync } from 'node:fs'
import { afterAll, beforeEach, expect, inject } from 'vitest'
import { capture, leakedSecrets } from './support/secrets.js'

process.env.DYNAMODB_ENDPOINT = inject('dynamoEndpoint')
process.env.AWS_REGION ??= 'local'
process.env.AWS_ACCESS_KEY_ID ??= 'local'
process.env.AWS_SECRET_ACCESS_KEY ??= 'local'
// Every line a sampled invocation may write (successes are debug): the secrets audit sees them all.
process.env.POWERTOOLS_LOG_LEVEL ??= 'DEBUG'

type Write = (...args: unknown[]) => boolean
interface Held {
  readonly write: Write
  readonly fd: number
  readonly text: string
}
interface Terminal {
  /** Written during the current test: shown if it fails, dropped if it passes. */
  test: Held[]
  /** Written outside any test (hooks, imports): shown if the file fails. */
  file: Held[]
}

// Everything written to stdout and stderr is captured for the audit below; Powertools
// writes there directly, past vitest's console interception (so vitest's `silent:
// 'passed-only'` cannot hide it). The terminal gets it only for a failing test or file.
// console.* still goes through vitest, shown: the suites print their reports with it.
const CAPTURING = Symbol.for('token-service.test.capturing')
const global = globalThis as typeof globalThis & { [CAPTURING]?: Terminal }
global[CAPTURING] ??= install()
const terminal = global[CAPTURING]

function install(): Terminal {
  const terminal: Terminal = { test: [], file: [] }
  for (const [fd, stream] of [
    [1, process.stdout],
    [2, process.stderr],
  ] as const) {
    const write = stream.write.bind(stream) as Write
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString()
      capture().output.push(text)
      terminal.test.push({ write, fd, text })
      const callback = rest.find((arg) => typeof arg === 'function')
      if (callback) process.nextTick(callback as () => void)
      return true
    }) as typeof stream.write
  }
  // A worker that dies mid-file still shows what it held, the way it was written.
  process.once('exit', () => {
    for (const { fd, text } of [...terminal.file, ...terminal.test]) writeSync(fd, text)
  })
  return terminal
}

function show(held: Held[]) {
  for (const { write, text } of held.splice(0)) write(text)
}

interface TaskLike {
  readonly result?: { readonly state?: string }
  readonly tasks?: readonly TaskLike[]
}
const failed = (task: TaskLike): boolean =>
  task.result?.state === 'fail' || (task.tasks ?? []).some(failed)

beforeEach(({ onTestFinished }) => {
  terminal.file.push(...terminal.test.splice(0))
  onTestFinished(({ task }) => {
    if (task.result?.state === 'fail') show(terminal.test)
    else terminal.test.length = 0
  })
})

// vitest reads the first parameter for fixtures: it must be a pattern, even an empty one.
// biome-ignore lint/correctness/noEmptyPattern: the file comes second
afterAll(({}, file) => {
  terminal.file.push(...terminal.test.splice(0))
  if (failed(file)) show(terminal.file)
  else terminal.file.length = 0
  // No token, password or hash this file produced may appear in anything it logged.
  expect(leakedSecrets(capture().output.join(''))).toEqual([])
})
