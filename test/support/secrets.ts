/**
 * Every secret the suite produces (tokens, passwords, hashes) is recorded
 * here; test/setup.ts captures everything written to stdout and stderr, and
 * after each test file checks that no recorded secret appears in it.
 */
interface Capture {
  secrets: Set<string>
  output: string[]
}

const KEY = Symbol.for('token-service.test.capture')
type WithCapture = typeof globalThis & { [KEY]?: Capture }

export function capture(): Capture {
  const global = globalThis as WithCapture
  global[KEY] ??= { secrets: new Set(), output: [] }
  return global[KEY]
}

/** Remembers a secret the logs must never show. Values shorter than 8 characters are ignored. */
export function recordSecret(...values: (string | undefined)[]): void {
  for (const value of values) if (value && value.length >= 8) capture().secrets.add(value)
}

/** The recorded secrets that appear in `text`, shown by their first characters only. */
export function leakedSecrets(text: string): string[] {
  return [...capture().secrets]
    .filter((secret) => text.includes(secret))
    .map((s) => `${s.slice(0, 6)}…`)
}
