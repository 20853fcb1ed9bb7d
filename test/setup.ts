import { afterAll, expect, inject } from 'vitest'
import { capture, leakedSecrets } from './support/secrets.js'

process.env.DYNAMODB_ENDPOINT = inject('dynamoEndpoint')
process.env.AWS_REGION ??= 'local'
process.env.AWS_ACCESS_KEY_ID ??= 'local'
process.env.AWS_SECRET_ACCESS_KEY ??= 'local'
// The AWS SDK warns once per process about Node 20's end of support; it is not ours to fix here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'

// Capture everything the code under test writes (Powertools logs go straight to stdout).
const CAPTURING = Symbol.for('token-service.test.capturing')
const global = globalThis as typeof globalThis & { [CAPTURING]?: boolean }
if (!global[CAPTURING]) {
  global[CAPTURING] = true
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream) as (...args: unknown[]) => boolean
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      capture().output.push(
        typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString(),
      )
      return write(chunk, ...rest)
    }) as typeof stream.write
  }
}

afterAll(() => {
  // No token, password or hash this file produced may appear in anything it logged.
  expect(leakedSecrets(capture().output.join(''))).toEqual([])
})
