/**
 * `npm test` on a machine that lacks what it needs: one line that says what, no stack
 * and no "No test files found".
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

describe('npm test without Java', () => {
  it('says in one line that DynamoDB Local needs Java 17 and how to install it, and fails', async () => {
    // A PATH with this Node and nothing else: no java.
    const bin = mkdtempSync(join(tmpdir(), 'no-java-'))
    symlinkSync(process.execPath, join(bin, 'node'))
    const child = spawn(
      process.execPath,
      ['node_modules/vitest/vitest.mjs', 'run', 'test/unit/node-runtime.test.ts'],
      { env: { ...process.env, PATH: bin, CI: 'true' }, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let stderr = ''
    child.stderr.on('data', (chunk) => {
      stderr += chunk
    })
    child.stdout.resume()
    const [code] = await once(child, 'close')
    expect(code).toBe(1)
    expect(stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        /^npm test: Java 17 or newer is needed for DynamoDB Local: .*apt-get install -y openjdk-17-jre-headless/,
      ),
    ])
  })
})
