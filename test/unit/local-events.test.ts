import { describe, expect, it } from 'vitest'
import type { CloudEvent } from '../../functions/core/security-events.js'
import { colourTerminal, printingSink } from '../../local/event-stream.js'

const event = {
  specversion: '1.0',
  id: 'e1',
  source: 'http://localhost:3000',
  type: 'login.succeeded',
  time: '2026-05-01T00:00:00.000Z',
  datacontenttype: 'application/json',
  data: { client_id: 'demo-native' },
} as unknown as CloudEvent

async function printed(highlight: boolean): Promise<string[]> {
  const lines: string[] = []
  await printingSink((line) => lines.push(line), { highlight }).send([event, event])
  return lines
}

describe('local mode’s security events on the terminal', () => {
  it('are one JSON line each, the envelope itself', async () => {
    for (const line of await printed(false)) {
      expect(line.endsWith('\n')).toBe(true)
      expect(line.slice(0, -1)).not.toContain('\n')
      expect(JSON.parse(line)).toEqual(event)
    }
  })

  it('stand out from log lines in colour at a terminal, the JSON between the colour codes intact', async () => {
    for (const line of await printed(true)) {
      const [start, end] = ['\u001b[1;33m', '\u001b[0m\n']
      expect(line.startsWith(`${start}{`)).toBe(true)
      expect(line.endsWith(`}${end}`)).toBe(true)
      expect(JSON.parse(line.slice(start.length, -end.length))).toEqual(event)
    }
  })

  it('take no colour where NO_COLOR is set or the terminal is dumb', () => {
    expect(colourTerminal({ NO_COLOR: '1' })).toBe(false)
    expect(colourTerminal({ TERM: 'dumb' })).toBe(false)
  })
})
