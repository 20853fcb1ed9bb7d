import { randomBytes } from 'node:crypto'
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
