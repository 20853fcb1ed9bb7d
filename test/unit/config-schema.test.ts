import { describe, expect, it } from 'vitest'
import { type IntegerSetting, SETTINGS } from '../../functions/settings.js'
import { CONFIG_SCHEMA } from '../../lib/config.js'

type AnyField = {
  readonly type: string
  readonly min?: number
  readonly max?: number
  readonly default?: unknown
  readonly setting?: IntegerSetting
  readonly fields?: Readonly<Record<string, AnyField>>
}

/** Every integer key of the config file, by its dotted path. */
function integerKeys(
  fields: Readonly<Record<string, AnyField>>,
  prefix = '',
): [string, AnyField][] {
  return Object.entries(fields).flatMap(([name, field]): [string, AnyField][] => {
    if (field.fields) return integerKeys(field.fields, `${prefix}${name}.`)
    return field.type === 'integer' ? [[`${prefix}${name}`, field]] : []
  })
}

/**
 * The integer keys that reach no function: API Gateway's throttling and CloudWatch's
 * retention. Every other one sets a function setting and takes its bounds.
 */
const STACK_ONLY = [
  'throttle.rateLimit',
  'throttle.burstLimit',
  'loginThrottle.rateLimit',
  'loginThrottle.burstLimit',
  'logRetentionDays',
]

describe('the config file’s bounds are the functions’ bounds', () => {
  const keys = integerKeys(CONFIG_SCHEMA as unknown as Record<string, AnyField>)

  it('names the function setting of every integer key that reaches a function', () => {
    const unnamed = keys.filter(([, field]) => !field.setting).map(([key]) => key)
    expect(unnamed).toEqual(STACK_ONLY)
  })

  it('gives every such key exactly its setting’s bounds (and numeric default)', () => {
    for (const [key, field] of keys) {
      if (!field.setting) continue
      const setting = SETTINGS[field.setting]
      expect({ min: field.min, max: field.max }, key).toEqual({
        min: setting.min,
        max: setting.max,
      })
      if (typeof field.default === 'number') expect(field.default, key).toBe(setting.default)
    }
  })
})
