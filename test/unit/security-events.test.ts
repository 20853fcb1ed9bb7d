import { describe, expect, it } from 'vitest'
import {
  MAX_USER_AGENT_CHARS,
  SIGNAL_WINDOW_MS,
  securityEvent,
  sessionRevoked,
  signalEventId,
  toCloudEvent,
} from '../../functions/core/security-events.js'

const AT = Date.UTC(2026, 10, 30, 8, 30, 0, 250)

describe('security events (docs/design.md "Security events")', () => {
  it('are CloudEvents 1.0: id, source (the issuer), type, time, subject (the sub), JSON data', () => {
    const event = sessionRevoked(
      { sid: 'sid-1', sub: 'sub-1', clientId: 'native' },
      'logout_everywhere',
      AT,
      { sourceIp: '2001:db8::7', userAgent: 'agent/1' },
    )
    expect(toCloudEvent(event, 'https://auth.example.com')).toEqual({
      specversion: '1.0',
      id: event.id,
      source: 'https://auth.example.com',
      type: 'session.revoked',
      time: '2026-11-30T08:30:00.250Z',
      subject: 'sub-1',
      datacontenttype: 'application/json',
      data: {
        sid: 'sid-1',
        client_id: 'native',
        reason: 'logout_everywhere',
        source_ip: '2001:db8::7',
        user_agent: 'agent/1',
      },
    })
  })

  it('get a fresh UUID each, fixed once decided', () => {
    const a = securityEvent('user.enabled', AT, { subject: 'sub-1' })
    const b = securityEvent('user.enabled', AT, { subject: 'sub-1' })
    expect(a.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(a.id).not.toBe(b.id)
    expect(toCloudEvent(a, 'https://x').id).toBe(toCloudEvent(a, 'https://y').id)
  })

  it('leave out what is not known: no subject for an unknown username, no origin from the CLI', () => {
    const failed = securityEvent('login.failed', AT, { data: { reason: 'unknown_username' } })
    expect(toCloudEvent(failed, 'https://x')).not.toHaveProperty('subject')
    expect(failed.data).toEqual({ reason: 'unknown_username' })
    expect(securityEvent('user.disabled', AT, { subject: 's', origin: {} }).data).toEqual({})
  })

  it('cut a long user agent at 256 code points, never inside a surrogate pair', () => {
    const agent = `${'a'.repeat(MAX_USER_AGENT_CHARS - 1)}😀😀😀`
    const { data } = securityEvent('login.succeeded', AT, { origin: { userAgent: agent } })
    expect(Array.from(data.user_agent ?? '')).toHaveLength(MAX_USER_AGENT_CHARS)
    expect(data.user_agent?.endsWith('😀')).toBe(true)
  })

  it('give a theft signal one id per type, session and hour: a UUID (version 8) that every refusal in the hour shares', () => {
    const hour = Math.floor(AT / SIGNAL_WINDOW_MS) * SIGNAL_WINDOW_MS
    const id = signalEventId('dpop.key_mismatch', 'sid-1', hour)
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(signalEventId('dpop.key_mismatch', 'sid-1', hour + SIGNAL_WINDOW_MS - 1)).toBe(id)
    for (const other of [
      signalEventId('dpop.key_mismatch', 'sid-1', hour + SIGNAL_WINDOW_MS),
      signalEventId('dpop.key_mismatch', 'sid-2', hour),
      signalEventId('dpop.proof_replayed', 'sid-1', hour),
    ]) {
      expect(other).not.toBe(id)
    }
  })
})
