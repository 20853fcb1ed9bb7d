import { type Browser, type BrowserContext, chromium } from 'playwright-core'
import { hashToken } from '../../functions/core/refresh-token.js'
import { recordSecret } from './secrets.js'

/** Debian's Chromium (`apt-get install chromium`; .ci/run installs it). */
export const CHROMIUM = '/usr/bin/chromium'

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    timeout: 120_000,
  })
}

export interface ContextOptions {
  /** Install Playwright's fake clock at this time, paused: page timers run only when told. */
  readonly pausedAt?: number
}

export interface ObservedContext {
  readonly context: BrowserContext
  /** POST /token requests this context sent (to any origin). */
  tokenRequests(): number
}

/**
 * A browser context (one browser profile: its own cookie jar) that records
 * every token the service sends it as a secret, and counts refresh requests.
 */
export async function observedContext(
  browser: Browser,
  options: ContextOptions = {},
): Promise<ObservedContext> {
  const context = await browser.newContext()
  context.setDefaultTimeout(60_000)
  if (options.pausedAt !== undefined) {
    await context.clock.install({ time: options.pausedAt })
    await context.clock.pauseAt(options.pausedAt)
  }
  let tokenRequests = 0
  context.on('request', (request) => {
    if (request.method() === 'POST' && new URL(request.url()).pathname === '/token') {
      tokenRequests++
    }
  })
  context.on('response', async (response) => {
    const path = new URL(response.url()).pathname
    if (path !== '/login' && path !== '/token') return
    try {
      const cookie = (await response.allHeaders())['set-cookie'] ?? ''
      for (const value of cookie.matchAll(/__Host-rt_[^=]+=([^;\n]+)/g)) {
        recordSecret(value[1], value[1] ? hashToken(value[1]) : undefined)
      }
      const body = (await response.json()) as { access_token?: string }
      recordSecret(body.access_token)
    } catch {
      // not a token response (an error, or a page that went away)
    }
  })
  return { context, tokenRequests: () => tokenRequests }
}
