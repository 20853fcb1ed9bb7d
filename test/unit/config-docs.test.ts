import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { CLIENT_FIELDS } from '../../functions/core/clients.js'
import { SETTINGS } from '../../functions/settings.js'
import { CONFIG_SCHEMA } from '../../lib/config.js'
import { configurationDocs } from '../../lib/config-docs.js'

describe('docs/configuration.md', () => {
  it('is exactly what `npm run docs:config` generates from the settings’ definitions', () => {
    expect(readFileSync('docs/configuration.md', 'utf8')).toBe(configurationDocs())
  })

  it('names every config key, client key and function setting', () => {
    const docs = configurationDocs()
    for (const key of [
      ...Object.keys(CONFIG_SCHEMA),
      ...Object.keys(CLIENT_FIELDS),
      ...Object.keys(SETTINGS),
      'loginBackoff.freeFailures',
    ]) {
      expect(docs, key).toContain(`\`${key}\``)
    }
  })
})
