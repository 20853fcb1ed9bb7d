import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  checkKeyChange,
  type KeyChangeRules,
  type KeyLedger,
  planKeyLedger,
  type SigningKeySpec,
  transitionSigningKeys,
} from '../../lib/signing-keys.js'

const HOUR = 3600
const start = new Date('2026-05-01T00:00:00.000Z')
const later = (seconds: number) => new Date(start.getTime() + seconds * 1000)
// 2 h (native JWT authorizer key cache) + 5 min (JWKS max-age); 15 min tokens + 60 s margin.
const rules = (now: Date): KeyChangeRules => ({
  algorithm: 'RS256',
  now,
  publishWaitSeconds: 2 * HOUR + 300,
  retireWaitSeconds: 900 + 60,
})

const keys = (...specs: [string, 'active' | 'retiring'][]): SigningKeySpec[] =>
  specs.map(([id, state]) => ({ id, state }))

/** Runs a sequence of deployments; each step's ledger feeds the next. */
function deploy(steps: [number, SigningKeySpec[]][]): { problems: string[]; ledger: KeyLedger } {
  let ledger: KeyLedger | undefined
  let problems: string[] = []
  for (const [at, list] of steps) {
    const result = checkKeyChange(ledger, list, rules(later(at)))
    problems = result.problems
    if (problems.length > 0) break
    ledger = result.next
  }
  return { problems, ledger: ledger as KeyLedger }
}

describe('signing-key ledger', () => {
  it('accepts the whole runbook: publish as retiring, activate after the key caches turn over, remove after the longest token lifetime', () => {
    const { problems, ledger } = deploy([
      [0, keys(['k1', 'active'])],
      [HOUR, keys(['k1', 'active'], ['k2', 'retiring'])],
      [HOUR + 2 * HOUR + 300, keys(['k2', 'active'], ['k1', 'retiring'])],
      [HOUR + 2 * HOUR + 300 + 960, keys(['k2', 'active'])],
    ])
    expect(problems).toEqual([])
    expect(ledger).toEqual({
      algorithm: 'RS256',
      active: 'k2',
      keys: {
        k2: {
          publishedAt: later(HOUR).toISOString(),
          activatedAt: later(3 * HOUR + 300).toISOString(),
        },
      },
      removed: ['k1'],
    })
  })

  it('refuses removing the active key', () => {
    const { problems } = deploy([
      [0, keys(['k1', 'active'], ['k2', 'retiring'])],
      [10 * HOUR, keys(['k2', 'active'])],
    ])
    expect(problems).toEqual([expect.stringMatching(/the active key "k1" was removed/)])
  })

  it('refuses a new key that is active at once', () => {
    const { problems } = deploy([
      [0, keys(['k1', 'active'])],
      [10 * HOUR, keys(['k2', 'active'], ['k1', 'retiring'])],
    ])
    expect(problems).toEqual([
      expect.stringMatching(/key "k2" is new and already active: add it as "retiring" first/),
    ])
  })

  it('refuses activating a key before the verifiers’ key caches can have it, naming the earliest time', () => {
    const { problems } = deploy([
      [0, keys(['k1', 'active'])],
      [HOUR, keys(['k1', 'active'], ['k2', 'retiring'])],
      [2 * HOUR, keys(['k2', 'active'], ['k1', 'retiring'])],
    ])
    expect(problems).toEqual([
      expect.stringContaining(`make it active after ${later(3 * HOUR + 300).toISOString()}`),
    ])
  })

  it('refuses removing a key whose tokens may still be live, and allows it one token lifetime later', () => {
    const steps: [number, SigningKeySpec[]][] = [
      [0, keys(['k1', 'active'], ['k2', 'retiring'])],
      [10 * HOUR, keys(['k2', 'active'], ['k1', 'retiring'])],
    ]
    const early = deploy([...steps, [10 * HOUR + 900, keys(['k2', 'active'])]])
    expect(early.problems).toEqual([
      expect.stringContaining(`remove it after ${later(10 * HOUR + 960).toISOString()}`),
    ])
    expect(deploy([...steps, [10 * HOUR + 960, keys(['k2', 'active'])]]).problems).toEqual([])
  })

  it('lets a key that never signed go at any time, and a rollback to a key published long ago', () => {
    expect(
      deploy([
        [0, keys(['k1', 'active'], ['k2', 'retiring'])],
        [60, keys(['k1', 'active'])],
      ]).problems,
    ).toEqual([])
    expect(
      deploy([
        [0, keys(['k1', 'active'], ['k2', 'retiring'])],
        [10 * HOUR, keys(['k2', 'active'], ['k1', 'retiring'])],
        [10 * HOUR + 60, keys(['k1', 'active'], ['k2', 'retiring'])],
      ]).problems,
    ).toEqual([])
  })

  it('refuses reusing the id of a removed key, and changing the algorithm, which would fail the stack update', () => {
    const reused = deploy([
      [0, keys(['k1', 'active'], ['k2', 'retiring'])],
      [60, keys(['k1', 'active'])],
      [120, keys(['k1', 'active'], ['k2', 'retiring'])],
    ])
    expect(reused.problems).toEqual([
      expect.stringMatching(/key id "k2" belonged to a key that was removed/),
    ])

    const first = checkKeyChange(undefined, keys(['k1', 'active']), rules(start)).next
    const es256 = checkKeyChange(first, keys(['k1', 'active']), {
      ...rules(later(60)),
      algorithm: 'ES256',
    })
    expect(es256.problems).toEqual([
      expect.stringMatching(
        /algorithm changes from RS256 to ES256: CloudFormation cannot change the KeySpec .* Deploy a new stack/,
      ),
    ])
  })

  it('reports every problem of one change at once', () => {
    const { problems } = deploy([
      [0, keys(['k1', 'active'])],
      [60, keys(['k9', 'active'])],
    ])
    expect(problems).toHaveLength(2)
  })
})

describe('transition signing keys (what login and token may sign with besides the active key)', () => {
  /** The transition keys after each step of a sequence of deployments. */
  function transitions(steps: [number, SigningKeySpec[]][]): string[][] {
    let ledger: KeyLedger | undefined
    return steps.map(([at, list]) => {
      const { problems, next } = checkKeyChange(ledger, list, rules(later(at)))
      expect(problems).toEqual([])
      ledger = next
      return transitionSigningKeys(next)
    })
  }

  it('through the runbook: the incoming key from its publication, the outgoing key from the switch until it is removed', () => {
    const switchAt = HOUR + 2 * HOUR + 300
    expect(
      transitions([
        [0, keys(['k1', 'active'])],
        [HOUR, keys(['k1', 'active'], ['k2', 'retiring'])],
        // The same list synthesized again (cdk diff, then cdk deploy): the grants stay.
        [HOUR + 60, keys(['k1', 'active'], ['k2', 'retiring'])],
        [switchAt, keys(['k2', 'active'], ['k1', 'retiring'])],
        [switchAt + 60, keys(['k2', 'active'], ['k1', 'retiring'])],
        [switchAt + 960, keys(['k2', 'active'])],
      ]),
    ).toEqual([[], ['k2'], ['k2'], ['k1'], ['k1'], []])
  })

  it('a key retired before the last switch may no longer sign; one published meanwhile may', () => {
    const second = 2 * HOUR + 400 + 2 * HOUR + 300
    expect(
      transitions([
        [0, keys(['k1', 'active'], ['k2', 'retiring'])],
        [2 * HOUR + 300, keys(['k2', 'active'], ['k1', 'retiring'])],
        [2 * HOUR + 400, keys(['k2', 'active'], ['k1', 'retiring'], ['k3', 'retiring'])],
        [second, keys(['k3', 'active'], ['k2', 'retiring'], ['k1', 'retiring'])],
      ]),
    ).toEqual([['k2'], ['k1'], ['k1', 'k3'], ['k2']])
  })

  it('going back to the previous key makes the abandoned one outgoing', () => {
    expect(
      transitions([
        [0, keys(['k1', 'active'], ['k2', 'retiring'])],
        [10 * HOUR, keys(['k2', 'active'], ['k1', 'retiring'])],
        [10 * HOUR + 60, keys(['k1', 'active'], ['k2', 'retiring'])],
      ]),
    ).toEqual([['k2'], ['k1'], ['k2']])
  })

  it('none after a compromised key is replaced at once: nothing to fall back to', () => {
    const first = checkKeyChange(undefined, keys(['k1', 'active']), rules(start)).next
    const { problems, next } = checkKeyChange(first, keys(['k2', 'active']), rules(later(60)))
    expect(problems.length).toBeGreaterThan(0) // accepted only with unsafeKeyChangeReason
    expect(transitionSigningKeys(next)).toEqual([])
  })
})

describe('signing-key ledger file', () => {
  const path = () => join(mkdtempSync(join(tmpdir(), 'key-ledger-')), 'signing-keys.lock.json')
  /** What bin/app.ts does: plan, then write when there is nothing to refuse. */
  const apply = (file: string, stack: string, list: SigningKeySpec[], now: Date) => {
    const plan = planKeyLedger(file, stack, list, rules(now))
    if (plan.problems.length === 0) plan.write()
    return plan
  }

  it('starts from nothing, records per stack, and rewrites only when something changed', () => {
    const file = path()
    expect(apply(file, 'Prod', keys(['k1', 'active']), start)).toMatchObject({
      problems: [],
      changed: true,
      transitionKeys: [],
    })
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({
      version: 1,
      stacks: {
        Prod: {
          algorithm: 'RS256',
          active: 'k1',
          keys: { k1: { publishedAt: start.toISOString(), activatedAt: start.toISOString() } },
          removed: [],
        },
      },
    })
    expect(apply(file, 'Prod', keys(['k1', 'active']), later(60)).changed).toBe(false)
    // What bin/app.ts passes to the stack as transitionSigningKeys.
    expect(
      apply(file, 'Prod', keys(['k1', 'active'], ['k2', 'retiring']), later(120)).transitionKeys,
    ).toEqual(['k2'])
    apply(file, 'Dev', keys(['d1', 'active']), later(60))
    expect(Object.keys(JSON.parse(readFileSync(file, 'utf8')).stacks).sort()).toEqual([
      'Dev',
      'Prod',
    ])
  })

  it('writes nothing until asked, and records a refused change only when written deliberately', () => {
    const file = path()
    apply(file, 'Prod', keys(['k1', 'active']), start)
    const before = readFileSync(file, 'utf8')
    const compromised = keys(['k2', 'active'])
    const plan = planKeyLedger(file, 'Prod', compromised, rules(later(60)))
    expect(plan.problems.length).toBeGreaterThan(0)
    expect(readFileSync(file, 'utf8')).toBe(before)

    plan.write() // what -c unsafeKeyChangeReason=... leads to
    expect(JSON.parse(readFileSync(file, 'utf8')).stacks.Prod).toMatchObject({
      active: 'k2',
      removed: ['k1'],
    })
  })

  it('refuses a file that is not a ledger', () => {
    const file = path()
    writeFileSync(file, JSON.stringify({ hello: 'world' }))
    expect(() => planKeyLedger(file, 'Prod', keys(['k1', 'active']), rules(start))).toThrow(
      /not a signing-key ledger/,
    )
    expect(existsSync(file)).toBe(true)
  })
})
