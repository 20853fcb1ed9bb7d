import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { Logger } from '@aws-lambda-powertools/logger'
import { describe, expect, it } from 'vitest'
import { capture, leakedSecrets, recordSecret } from '../support/secrets.js'

describe('the log scan of every test file (test/setup.ts)', () => {
  it('sees what Powertools Logger writes, as the handlers log it', () => {
    const marker = `marker-${randomBytes(8).toString('hex')}`
    new Logger({ serviceName: 'scan-check' }).info('scan check', { marker })
    expect(capture().output.join('')).toContain(marker)
  })

  it('reports a recorded secret that appears in the captured text, and only by its first characters', () => {
    const secret = `rt1_${randomBytes(16).toString('hex')}`
    recordSecret(secret)
    const leaks = leakedSecrets(`some log line ${secret} more`)
    expect(leaks).toEqual([`${secret.slice(0, 6)}…`])
    expect(leakedSecrets('a clean log line')).toEqual([])
    capture().secrets.delete(secret)
  })
})

describe('the test output (test/setup.ts and vitest.config.ts)', () => {
  it("hides a passing test's logs, shows a failing test's or set-up's, and still reports a secret a passing test logged", async () => {
    const marker = () => `marker-${randomBytes(8).toString('hex')}`
    const passing = marker()
    const failing = marker()
    const setup = marker()
    const secret = `rt1_${randomBytes(16).toString('hex')}`
    // A nested run of the suite's own config on test/fixtures/log-capture.
    const env = Object.fromEntries(
      Object.entries(process.env).filter(
        ([name]) => !name.startsWith('VITEST') && name !== 'FORCE_COLOR',
      ),
    )
    const child = spawn(
      process.execPath,
      [
        'node_modules/vitest/vitest.mjs',
        'run',
        '--config',
        'test/fixtures/log-capture/vitest.config.ts',
      ],
      {
        env: {
          ...env,
          NO_COLOR: '1',
          FIXTURE_PASSING: passing,
          FIXTURE_FAILING: failing,
          FIXTURE_SETUP: setup,
          FIXTURE_SECRET: secret,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let output = ''
    child.stdout.on('data', (chunk) => {
      output += chunk
    })
    child.stderr.on('data', (chunk) => {
      output += chunk
    })
    const [code] = await once(child, 'close')

    expect(code).toBe(1)
    expect(output).toContain('1 failed | 1 passed | 1 skipped')
    expect(output).toContain(failing)
    expect(output).toContain(setup)
    expect(output).not.toContain(passing)
    expect(output).toContain(`${secret.slice(0, 6)}…`)
    expect(output).not.toContain(secret)
  })
})
