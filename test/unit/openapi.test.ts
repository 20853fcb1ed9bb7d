import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { ROUTES } from '../../functions/routes.js'

const spec = JSON.parse(readFileSync(new URL('../../openapi.json', import.meta.url), 'utf8'))

describe('openapi.json', () => {
  it('documents exactly the routes of the route table (which CDK and local mode serve)', () => {
    const served = ROUTES.map((r) => `${r.method} ${r.path}`)
    const documented = Object.entries(
      spec.paths as Record<string, Record<string, unknown>>,
    ).flatMap(([path, operations]) =>
      Object.keys(operations).map((m) => `${m.toUpperCase()} ${path}`),
    )
    expect(documented.sort()).toEqual([...new Set(served)].sort())
  })

  it('marks exactly the routes behind the authorizer as bearer-protected', () => {
    const bearer = ROUTES.filter((r) => r.auth === 'bearer').map((r) => `${r.method} ${r.path}`)
    const secured = Object.entries(
      spec.paths as Record<string, Record<string, { security?: unknown }>>,
    ).flatMap(([path, operations]) =>
      Object.entries(operations)
        .filter(([, op]) => op.security !== undefined)
        .map(([m]) => `${m.toUpperCase()} ${path}`),
    )
    expect(secured.sort()).toEqual([...new Set(bearer)].sort())
  })

  it('resolves every $ref', () => {
    const refs = JSON.stringify(spec).match(/"\$ref":"[^"]+"/g) ?? []
    expect(refs.length).toBeGreaterThan(10)
    for (const ref of refs) {
      const path = (ref.split('"')[3] as string).replace(/^#\//, '').split('/')
      const target = path.reduce<unknown>(
        (node, key) => (node as Record<string, unknown>)?.[key],
        spec,
      )
      expect(target, ref).toBeDefined()
    }
  })
})
