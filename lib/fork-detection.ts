import { itemKey, TABLE_SCHEMA } from '../functions/adapters/dynamodb/table.js'

const SESSION = itemKey.session('').sk

/**
 * The fork consumer's event source mapping filters (docs/multi-region.md "Fork detection"),
 * as Lambda event filtering patterns: a MODIFY of a session item with an `epoch` in its new
 * image (an adoption overwrote something) or its old one (something overwrote an adoption).
 * A session never adopted carries no epoch: its rotations invoke nothing. The simulation
 * applies the same patterns (test/support/regions.ts).
 */
export const FORK_FILTER_PATTERNS: readonly Record<string, unknown>[] = (
  ['NewImage', 'OldImage'] as const
).map((image) => ({
  eventName: ['MODIFY'],
  dynamodb: {
    Keys: { [TABLE_SCHEMA.sortKey]: { S: [SESSION] } },
    [image]: { epoch: { N: [{ exists: true }] } },
  },
}))
