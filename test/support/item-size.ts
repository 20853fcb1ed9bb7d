/**
 * An item's size as DynamoDB counts it for capacity units ("Item sizes and
 * formats" in the DynamoDB developer guide): each attribute's name in UTF-8
 * bytes plus its value: a string's UTF-8 bytes, a number's (significant digits
 * / 2) + 1 bytes, a binary's bytes, 1 byte for a boolean or null, and for a
 * list or map 3 bytes plus 1 byte per element plus the elements.
 */
export function itemSize(item: Record<string, unknown>): number {
  let size = 0
  for (const [name, value] of Object.entries(item)) {
    if (value === undefined) continue
    size += Buffer.byteLength(name, 'utf8') + valueSize(value)
  }
  return size
}

function valueSize(value: unknown): number {
  if (typeof value === 'string') return Buffer.byteLength(value, 'utf8')
  if (typeof value === 'number') {
    const digits = String(Math.abs(value)).replace('.', '').replace(/^0+/, '').replace(/0+$/, '')
    return Math.ceil(Math.max(digits.length, 1) / 2) + 1
  }
  if (typeof value === 'boolean' || value === null) return 1
  if (value instanceof Uint8Array) return value.length
  if (Array.isArray(value)) return 3 + value.reduce((sum, v) => sum + 1 + valueSize(v), 0)
  if (typeof value === 'object') {
    const entries = Object.entries(value as object).filter(([, v]) => v !== undefined)
    return (
      3 + entries.reduce((sum, [name, v]) => sum + 1 + Buffer.byteLength(name) + valueSize(v), 0)
    )
  }
  throw new Error(`no size for ${typeof value}`)
}
