import { createHash } from 'node:crypto'
import type { BreachedPasswords, BreachVerdict } from '../core/password-policy.js'
import { readCapped } from './capped-body.js'

/**
 * A k-anonymity range API of breached passwords, compatible with Have I Been
 * Pwned's Pwned Passwords (`GET <url>/range/<first 5 hex of the SHA-1>`,
 * answered with `SUFFIX:COUNT` lines): the service never sees the password,
 * nor its hash, only a prefix that a million passwords share. `Add-Padding`
 * asks for decoy lines of count 0, so that the answer's size says nothing
 * either. Any failure (no answer within `timeoutMs`, a status other than 200,
 * an answer over 1 MiB) is `unavailable`: the policy then accepts the password
 * and counts the miss (core/password-policy.ts).
 */
export function breachRange(options: {
  readonly url: string
  readonly timeoutMs: number
}): BreachedPasswords {
  const base = options.url.replace(/\/+$/, '')
  return {
    async check(password): Promise<BreachVerdict> {
      const sha1 = createHash('sha1').update(password.normalize('NFC'), 'utf8').digest('hex')
      const prefix = sha1.slice(0, 5).toUpperCase()
      const suffix = sha1.slice(5).toUpperCase()
      try {
        const response = await fetch(`${base}/range/${prefix}`, {
          headers: { 'add-padding': 'true', accept: 'text/plain' },
          redirect: 'error',
          signal: AbortSignal.timeout(options.timeoutMs),
        })
        if (response.status !== 200) {
          await response.body?.cancel().catch(() => undefined)
          return 'unavailable'
        }
        const body = await readCapped(response, MAX_RANGE_BYTES)
        if (body === 'too large') return 'unavailable'
        for (const line of body.text.split('\n')) {
          const [lineSuffix, count] = line.trim().split(':')
          if (lineSuffix?.toUpperCase() === suffix)
            return Number(count) > 0 ? 'breached' : 'not_found'
        }
        return 'not_found'
      } catch {
        return 'unavailable'
      }
    },
  }
}

/** A padded range answer is about 30 KiB: far above any real one, far below harm. */
const MAX_RANGE_BYTES = 1024 * 1024
