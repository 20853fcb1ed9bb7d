import { existsSync, readFileSync, writeFileSync } from 'node:fs'

export type SigningAlgorithm = 'RS256' | 'ES256'
export type SigningKeyState = 'active' | 'retiring'
/**
 * How a key signs: `kms`, a KMS asymmetric key (a `Sign` per token); or
 * `envelope`, a key pair KMS generated and wrapped under a symmetric key of
 * the stack, which `login` and `token` unwrap once per container and sign
 * with in memory (docs/design.md "Keys").
 */
export type SigningMode = 'kms' | 'envelope'

/** One KMS signing key of the stack (docs/design.md "Keys"). */
export interface SigningKeySpec {
  /**
   * A stable name, such as `k2026-05`: the key's construct id, logical id and
   * alias derive from it, so adding, reordering or re-stating keys never
   * replaces one. Letters, digits and `-`, at most 32 characters.
   */
  readonly id: string
  /**
   * `active`: signs new access tokens (exactly one key). `retiring`: published
   * in JWKS, never signs: a key on its way in or on its way out.
   */
  readonly state: SigningKeyState
}

const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9-]{0,31}$/
const STATES: readonly string[] = ['active', 'retiring']

export class SigningKeyError extends Error {
  override readonly name = 'SigningKeyError'
}

/**
 * The rules a key list must follow whatever came before: ids well formed and
 * unique, states known, exactly one active key. Throws a `SigningKeyError`
 * that names the problem.
 */
export function assertSigningKeys(keys: readonly SigningKeySpec[]): void {
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new SigningKeyError('signingKeys must list at least one key, exactly one of them active')
  }
  const seen = new Set<string>()
  for (const [index, key] of keys.entries()) {
    const at = `signingKeys[${index}]`
    if (typeof key?.id !== 'string' || !KEY_ID.test(key.id)) {
      throw new SigningKeyError(
        `${at}.id must be 1-32 letters, digits or '-' starting with a letter or digit, got ${JSON.stringify(key?.id)}`,
      )
    }
    if (seen.has(key.id)) throw new SigningKeyError(`${at}.id "${key.id}" is listed twice`)
    seen.add(key.id)
    if (!STATES.includes(key.state)) {
      throw new SigningKeyError(
        `${at}.state must be "active" or "retiring", got ${JSON.stringify(key.state)}`,
      )
    }
  }
  const active = keys.filter((key) => key.state === 'active').map((key) => key.id)
  if (active.length === 0) {
    throw new SigningKeyError(
      'signingKeys has no active key: exactly one key must be active (it signs new tokens)',
    )
  }
  if (active.length > 1) {
    throw new SigningKeyError(
      `signingKeys has ${active.length} active keys (${active.join(', ')}): exactly one may be active`,
    )
  }
}

/** The one active key of a valid list. */
export const activeKeyOf = (keys: readonly SigningKeySpec[]): SigningKeySpec =>
  keys.find((key) => key.state === 'active') as SigningKeySpec

/** What the ledger remembers of one key. Times are ISO 8601. */
export interface KeyLedgerEntry {
  /** When the key was first synthesized: published in JWKS from the deployment after. */
  readonly publishedAt: string
  /** When it last became the active key. */
  readonly activatedAt?: string
  /** When it last stopped being the active key: its tokens live on for a while. */
  readonly deactivatedAt?: string
  /**
   * How the key signs, fixed when it was added (the `signing` setting then):
   * a key's material cannot move between KMS and an envelope. Absent: `kms`
   * (ledgers from before envelope signing).
   */
  readonly signing?: 'envelope'
  /**
   * The key is a multi-Region KMS key: it was added while `regions` was set (a key's
   * MultiRegion cannot change in place, so a key added before stays single-Region).
   * Absent: single-Region.
   */
  readonly multiRegion?: true
}

/**
 * The history of one stack's signing keys, as of its last synth. Checked in
 * (like `package-lock.json`), it lets synth refuse a key change that would
 * break tokens in flight, which a key list alone cannot show.
 */
export interface KeyLedger {
  readonly algorithm: SigningAlgorithm
  readonly active: string
  readonly keys: Readonly<Record<string, KeyLedgerEntry>>
  /** Ids of keys that left the stack; never to be used again. */
  readonly removed: readonly string[]
}

export interface KeyChangeRules {
  readonly algorithm: SigningAlgorithm
  /** How keys added now sign (`signing`); the keys already listed keep theirs. @default 'kms' */
  readonly signing?: SigningMode
  /** Whether keys added now are multi-Region (`regions` is set). @default false */
  readonly multiRegion?: boolean
  readonly now: Date
  /**
   * How long a key must have been published before it may sign: the longest a
   * verifier may cache the key set (the native JWT authorizer: up to 2 h) plus
   * the JWKS `max-age`.
   */
  readonly publishWaitSeconds: number
  /**
   * How long a key that stopped signing must stay published: the longest
   * access-token lifetime plus the verifiers' clock margin.
   */
  readonly retireWaitSeconds: number
}

/**
 * Compares a key list with the ledger of the previous synth. Returns the
 * problems (empty when the change is safe) and the ledger to record.
 */
export function checkKeyChange(
  previous: KeyLedger | undefined,
  keys: readonly SigningKeySpec[],
  rules: KeyChangeRules,
): { problems: string[]; next: KeyLedger } {
  assertSigningKeys(keys)
  const now = rules.now.toISOString()
  const active = activeKeyOf(keys).id
  const problems: string[] = []
  const ageSeconds = (iso: string) => (rules.now.getTime() - Date.parse(iso)) / 1000
  const at = (iso: string, plusSeconds: number) =>
    new Date(Date.parse(iso) + plusSeconds * 1000).toISOString()

  if (previous) {
    if (previous.algorithm !== rules.algorithm) {
      problems.push(
        `algorithm changes from ${previous.algorithm} to ${rules.algorithm}: CloudFormation cannot change the KeySpec of an existing KMS key, so the stack update would fail. Deploy a new stack (a new stackName, with a new issuer) for the new algorithm and move the clients to it.`,
      )
    }
    const listed = new Set(keys.map((key) => key.id))
    if (!listed.has(previous.active)) {
      problems.push(
        `the active key "${previous.active}" was removed: list it as "retiring" first (its tokens stay verifiable) and remove it once the longest access-token lifetime has passed after another key became active.`,
      )
    }
    if (active !== previous.active) {
      const entry = previous.keys[active]
      if (!entry) {
        problems.push(
          `key "${active}" is new and already active: add it as "retiring" first, deploy, and make it active ${rules.publishWaitSeconds} s later, when every verifier's key cache has it.`,
        )
      } else if (ageSeconds(entry.publishedAt) < rules.publishWaitSeconds) {
        problems.push(
          `key "${active}" was published at ${entry.publishedAt}; verifiers may not have it yet: make it active after ${at(entry.publishedAt, rules.publishWaitSeconds)}.`,
        )
      }
    }
    for (const [id, entry] of Object.entries(previous.keys)) {
      if (listed.has(id) || id === previous.active || !entry.deactivatedAt) continue
      if (ageSeconds(entry.deactivatedAt) < rules.retireWaitSeconds) {
        problems.push(
          `key "${id}" signed tokens until ${entry.deactivatedAt} that are still live: remove it after ${at(entry.deactivatedAt, rules.retireWaitSeconds)}.`,
        )
      }
    }
    for (const key of keys) {
      if (previous.removed.includes(key.id)) {
        problems.push(
          `key id "${key.id}" belonged to a key that was removed: give the new key a new id.`,
        )
      }
    }
  }

  const entries: Record<string, KeyLedgerEntry> = {}
  for (const key of [...keys].sort((a, b) => a.id.localeCompare(b.id))) {
    const before = previous?.keys[key.id]
    let { publishedAt, activatedAt, deactivatedAt } = before ?? { publishedAt: now }
    if (key.id === active && previous?.active !== active) {
      activatedAt = now
      deactivatedAt = undefined
    }
    if (key.id !== active && previous?.active === key.id) deactivatedAt = now
    // A key signs as it was added: switching modes is a rotation to a new key.
    const envelope = before ? before.signing === 'envelope' : rules.signing === 'envelope'
    // And multi-Region as it was added.
    const multiRegion = before ? before.multiRegion === true : rules.multiRegion === true
    entries[key.id] = {
      publishedAt,
      ...(activatedAt ? { activatedAt } : {}),
      ...(deactivatedAt ? { deactivatedAt } : {}),
      ...(envelope ? { signing: 'envelope' as const } : {}),
      ...(multiRegion ? { multiRegion: true as const } : {}),
    }
  }
  const gone = Object.keys(previous?.keys ?? {}).filter((id) => !(id in entries))
  return {
    problems,
    next: {
      algorithm: rules.algorithm,
      active,
      keys: entries,
      removed: [...new Set([...(previous?.removed ?? []), ...gone])].sort(),
    },
  }
}

/**
 * The keys besides the active one that `login` and `token` may also sign with and
 * read, so that a key change deployed half-way fails no request: CloudFormation
 * updates a function's policy and its configuration as separate resources, and
 * IAM is eventually consistent, so a function may run its new configuration
 * under the policy before, or its old one under the new policy
 * (docs/operations.md "Key rotation").
 *
 * - Incoming: a listed key the ledger never saw active. The deployment that
 *   activates it may run the new configuration under the policy before it.
 * - Outgoing: the key that was active until the active key took over, while it
 *   is listed. The deployment that switched may run the old configuration under
 *   the new policy. Synth cannot tell when that deployment has finished (the
 *   ledger records synths, not deployments), so the grant lasts until the key
 *   is removed or another key is activated.
 *
 * Signing with a listed key gives no power that signing with the active key
 * does not: every verifier trusts every listed key.
 */
export function transitionSigningKeys(ledger: KeyLedger): string[] {
  const since = ledger.keys[ledger.active]?.activatedAt
  return Object.entries(ledger.keys)
    .filter(
      ([id, entry]) =>
        id !== ledger.active &&
        (entry.activatedAt === undefined || (since !== undefined && entry.deactivatedAt === since)),
    )
    .map(([id]) => id)
    .sort()
}

/** How each key of the ledger signs: the stack's `signingKeyModes` prop. */
export function signingKeyModes(ledger: KeyLedger): Record<string, SigningMode> {
  return Object.fromEntries(
    Object.entries(ledger.keys).map(([id, entry]) => [id, entry.signing ?? 'kms']),
  )
}

/** The keys of the ledger that are multi-Region: the stack's `regions.multiRegionKeys`. */
export function multiRegionKeys(ledger: KeyLedger): string[] {
  return Object.entries(ledger.keys)
    .filter(([, entry]) => entry.multiRegion)
    .map(([id]) => id)
    .sort()
}

/** The ledger file: one ledger per stack name. */
export interface KeyLedgerFile {
  readonly version: 1
  readonly stacks: Readonly<Record<string, KeyLedger>>
}

/** A ledger change ready to be written once synth has succeeded. */
export interface KeyLedgerPlan {
  /** Why the change is unsafe; empty when it is safe. */
  readonly problems: readonly string[]
  /** Whether the ledger differs from the file. */
  readonly changed: boolean
  /** `transitionSigningKeys` of the new ledger: the stack's `transitionSigningKeys` prop. */
  readonly transitionKeys: readonly string[]
  /** `signingKeyModes` of the new ledger: the stack's `signingKeyModes` prop. */
  readonly modes: Readonly<Record<string, SigningMode>>
  /** `multiRegionKeys` of the new ledger. */
  readonly multiRegionKeys: readonly string[]
  /** Writes the new ledger (when it changed). */
  write(): void
}

/**
 * Reads the ledger file (a missing file is an empty ledger) and checks the
 * change for `stackName`. Nothing is written until `write()`: call it only
 * after a successful synth, and only when there are no problems or the change
 * is deliberately accepted.
 */
export function planKeyLedger(
  path: string,
  stackName: string,
  keys: readonly SigningKeySpec[],
  rules: KeyChangeRules,
): KeyLedgerPlan {
  const file: KeyLedgerFile = existsSync(path)
    ? (JSON.parse(readFileSync(path, 'utf8')) as KeyLedgerFile)
    : { version: 1, stacks: {} }
  if (file.version !== 1 || typeof file.stacks !== 'object' || file.stacks === null) {
    throw new SigningKeyError(`${path}: not a signing-key ledger (version 1)`)
  }
  const previous = file.stacks[stackName]
  const { problems, next } = checkKeyChange(previous, keys, rules)
  const changed = JSON.stringify(previous) !== JSON.stringify(next)
  return {
    problems,
    changed,
    transitionKeys: transitionSigningKeys(next),
    modes: signingKeyModes(next),
    multiRegionKeys: multiRegionKeys(next),
    write() {
      if (!changed) return
      const updated: KeyLedgerFile = { version: 1, stacks: { ...file.stacks, [stackName]: next } }
      writeFileSync(path, `${JSON.stringify(updated, null, 2)}\n`)
    },
  }
}
