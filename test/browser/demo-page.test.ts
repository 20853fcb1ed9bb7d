import { createServer, type Server } from 'node:http'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { demoAssets } from '../../demo/assets.js'
import type { ClientConfig } from '../../functions/core/clients.js'
import type { User } from '../../functions/core/ports.js'
import { freePort } from '../../local/dynamodb-local.js'
import { listen } from '../../local/server.js'
import { launchChromium, type ObservedContext, observedContext } from '../support/browser.js'
import { type Harness, PASSWORD, startHarness } from '../support/harness.js'
import { recordSecret } from '../support/secrets.js'

/**
 * The demo page in a real Chromium against local mode: a cookie-mode client
 * with 60 s access tokens, the server on a fake clock, and each browser
 * context's clock paused at the server's time, so that tests move both.
 */
let port: number
let origin: string
const CLIENT_ID = 'test-browser'
const COOKIE = `__Host-rt_${CLIENT_ID}`

let h: Harness
let browser: Browser
let elsewhere: Server
let elsewhereOrigin: string
const contexts: BrowserContext[] = []

beforeAll(async () => {
  port = await freePort()
  origin = `http://localhost:${port}`
  const spa: ClientConfig = {
    client_id: CLIENT_ID,
    type: 'spa',
    audience: 'https://api.test',
    allowed_origins: [origin],
    scopes: ['openid', 'api'],
    access_token_ttl_seconds: 60,
    reuse_grace_seconds: 10,
    cookie_mode: true,
  }
  const [harness, launched] = await Promise.all([
    (async () =>
      startHarness({
        clients: [spa],
        port,
        // The page's origin: its DPoP proofs name it, and local mode checks them against it.
        issuerHost: 'localhost',
        assets: await demoAssets({ clientId: CLIENT_ID }),
      }))(),
    launchChromium(),
  ])
  h = harness
  browser = launched
  // Another site: a page with a form that posts to /token.
  const otherPort = await freePort()
  elsewhereOrigin = `http://127.0.0.1:${otherPort}`
  elsewhere = createServer((_, res) => {
    res.writeHead(200, { 'content-type': 'text/html' })
    res.end(`<!doctype html><title>elsewhere</title>
      <form id="steal" method="post" action="${origin}/token">
        <input name="grant_type" value="refresh_token"><input name="client_id" value="${CLIENT_ID}">
      </form>`)
  })
  await listen(elsewhere, otherPort)
})

afterAll(async () => {
  await Promise.all(contexts.map((context) => context.close().catch(() => {})))
  await browser?.close()
  elsewhere?.closeAllConnections()
  await new Promise((resolve) => elsewhere?.close(resolve))
  await h?.close()
})

/** A fresh browser profile whose clock stands still at the server's time. */
async function profile(): Promise<ObservedContext> {
  const observed = await observedContext(browser, { pausedAt: h.clock.now() })
  contexts.push(observed.context)
  return observed
}

/** Moves the server's clock and the browser's together; due page timers fire. */
async function advance(context: BrowserContext, seconds: number) {
  h.clock.advance(seconds)
  await context.clock.runFor(seconds * 1000)
}

const signedIn = (page: Page) => page.waitForSelector('#status[data-state="signed-in"]')
const signedOut = (page: Page) => page.waitForSelector('#login-view:not([hidden])')

async function signIn(page: Page, user: User) {
  await page.goto(`${origin}/`)
  await signedOut(page)
  await page.fill('#username', user.username)
  await page.fill('#password', PASSWORD)
  await page.click('#login-button')
  await signedIn(page)
}

/** Opens the page in another tab of the same profile: it picks the session up from the cookie. */
async function openTab(context: BrowserContext): Promise<Page> {
  const page = await context.newPage()
  await page.goto(`${origin}/`)
  await signedIn(page)
  return page
}

/** An IndexedDB request as the page's code sees it (this program has no DOM lib). */
interface IdbRequest {
  // biome-ignore lint/suspicious/noExplicitAny: the page's own objects
  readonly result: any
  readonly error: unknown
  onsuccess: (() => void) | null
  onerror: (() => void) | null
}

/** The page's globals, for functions that run in the page (this program has no DOM lib). */
interface PageGlobals {
  readonly document: {
    readonly cookie: string
    getElementById(
      id: string,
    ): { readonly dataset: Record<string, string | undefined>; readonly textContent: string } | null
    readonly forms: { namedItem(name: string): { submit(): void } | null }
  }
}

const expiresAt = async (page: Page) =>
  Number(await page.getAttribute('#countdown', 'data-expires-at'))

/** Waits until the page holds an access token that expires after `after`. */
const newTokenAfter = (page: Page, after: number) =>
  page.waitForFunction(
    (before) =>
      Number(
        (globalThis as unknown as PageGlobals).document.getElementById('countdown')?.dataset
          .expiresAt,
      ) > before,
    after,
  )

/** Clicks "Call GET /me" and returns the answer the activity log shows for it. */
async function callMe(page: Page): Promise<string> {
  const answers = page.locator('#log li', { hasText: 'GET /me' })
  const before = await answers.count()
  await page.click('#call-me')
  await answers.nth(before).waitFor() // the log is newest first: the new one is the first
  return (await answers.first().textContent()) ?? ''
}

async function generation(user: User): Promise<number> {
  const sessions = await h.sessions.listSessions(user.sub)
  return sessions.reduce((sum, session) => sum + session.generation, 0)
}

describe('demo page in Chromium, cookie mode', () => {
  it('logs no error in the console on a first visit: no refresh is tried without a session', async () => {
    const observed = await profile()
    const page = await observed.context.newPage()
    const problems: string[] = []
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') problems.push(message.text())
    })
    page.on('pageerror', (error) => problems.push(error.message))
    await page.goto(`${origin}/`)
    await signedOut(page)
    expect(problems).toEqual([])
    expect(observed.tokenRequests()).toBe(0)
  })

  it('keeps the DPoP thumbprint inside its card at 1280 px', async () => {
    const { context } = await profile()
    const page = await context.newPage()
    await page.setViewportSize({ width: 1280, height: 900 })
    await signIn(page, await h.addUser())
    await page.waitForFunction(
      () =>
        ((globalThis as unknown as PageGlobals).document.getElementById('dpop-thumbprint')
          ?.textContent?.length ?? 0) > 40,
    )
    const thumbprint = await page.locator('#dpop-thumbprint').boundingBox()
    const card = await page
      .locator('.card', { has: page.locator('#dpop-thumbprint') })
      .boundingBox()
    expect(thumbprint && card).toBeTruthy()
    if (!thumbprint || !card) return
    expect(thumbprint.x).toBeGreaterThanOrEqual(card.x)
    expect(thumbprint.x + thumbprint.width).toBeLessThanOrEqual(card.x + card.width)
  })

  it('signs in through the page and shows the verified claims from /me', async () => {
    const { context } = await profile()
    const page = await context.newPage()
    const user = await h.addUser()
    await signIn(page, user)
    await page.waitForSelector('#claims tr[data-claim="sub"]')
    expect(await page.textContent('#claims tr[data-claim="sub"] td')).toBe(user.sub)
    expect(await page.textContent('#claims tr[data-claim="username"] td')).toBe(user.username)
    expect(await page.textContent('#claims tr[data-claim="client_id"] td')).toBe(CLIENT_ID)
    expect(await page.textContent('#countdown')).toBe('60')
    expect(await page.textContent('#status')).toBe(`Signed in as ${user.username}`)
  })

  it('keeps the refresh token in an HttpOnly cookie that document.cookie does not show', async () => {
    const { context } = await profile()
    const page = await context.newPage()
    const login = page.waitForResponse((r) => r.url().endsWith('/login'))
    await signIn(page, await h.addUser())
    expect(await (await login).json()).not.toHaveProperty('refresh_token')
    const cookies = await context.cookies(origin)
    expect(
      cookies.map(({ name, httpOnly, secure, sameSite, path }) => ({
        name,
        httpOnly,
        secure,
        sameSite,
        path,
      })),
    ).toEqual([{ name: COOKIE, httpOnly: true, secure: true, sameSite: 'Strict', path: '/' }])
    expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).document.cookie)).toBe(
      '',
    )
    expect(await page.textContent('#document-cookie')).toBe('""')
  })

  it('refreshes an access token that expired while the page slept, with no visible logout', async () => {
    const observed = await profile()
    const page = await observed.context.newPage()
    await signIn(page, await h.addUser())
    const first = await expiresAt(page)
    const requests = observed.tokenRequests()
    // A laptop lid closed for two minutes: time moves, no timer ran.
    h.clock.advance(120)
    await observed.context.clock.setSystemTime(h.clock.now())
    expect(await callMe(page)).toContain('GET /me → 200')
    await newTokenAfter(page, first)
    expect(observed.tokenRequests()).toBe(requests + 1)
    expect(await page.isHidden('#login-view')).toBe(true)
    expect(await page.getAttribute('#status', 'data-state')).toBe('signed-in')
  })

  it('retries a call once after a 401 invalid_token when the server clock is ahead', async () => {
    const observed = await profile()
    const page = await observed.context.newPage()
    await signIn(page, await h.addUser())
    await page.waitForSelector('#claims tr[data-claim="jti"]')
    const jti = await page.textContent('#claims tr[data-claim="jti"] td')
    const requests = observed.tokenRequests()
    h.clock.advance(120) // only the server's clock: the page still thinks its token is fresh
    const statuses: number[] = []
    page.on('response', (r) => {
      if (r.url().endsWith('/me')) statuses.push(r.status())
    })
    expect(await callMe(page)).toContain('GET /me → 200')
    expect(statuses[0]).toBe(401) // then the retry (and the page's own reload after the refresh)
    expect(statuses.slice(1)).toEqual(statuses.slice(1).map(() => 200))
    expect(statuses.length).toBeGreaterThan(1)
    expect(observed.tokenRequests()).toBe(requests + 1)
    expect(await page.textContent('#refresh-count')).toBe('1')
    expect(await page.textContent('#claims tr[data-claim="jti"] td')).not.toBe(jti) // a new token
    expect(await page.getAttribute('#status', 'data-state')).toBe('signed-in')
  })

  it('two tabs that expire together make exactly one rotation and both stay signed in', async () => {
    const observed = await profile()
    const { context } = observed
    const user = await h.addUser()
    const a = await context.newPage()
    await signIn(a, user)
    const b = await openTab(context) // refreshes once with the cookie; tab A takes the result
    await a.locator('#log li', { hasText: 'from another tab' }).first().waitFor()
    const before = { generation: await generation(user), requests: observed.tokenRequests() }
    const shared = await expiresAt(a)

    // Both tabs' refresh timers (12 to 18 s before expiry) come due in these 50 s; the
    // clock stops short of the 15 s request timeouts they start.
    await advance(context, 50)
    await Promise.all([newTokenAfter(a, shared), newTokenAfter(b, shared)])
    expect(await callMe(a)).toContain('GET /me → 200')
    expect(await callMe(b)).toContain('GET /me → 200')

    expect(await generation(user)).toBe(before.generation + 1)
    expect(observed.tokenRequests()).toBe(before.requests + 1)
    expect(await expiresAt(a)).toBe(await expiresAt(b))
    for (const tab of [a, b]) {
      expect(await tab.getAttribute('#status', 'data-state')).toBe('signed-in')
      expect(await tab.isHidden('#login-view')).toBe(true)
    }
  })

  it('binds the session to a DPoP key in IndexedDB: the thumbprint shown is the jkt /me proves, the same in every tab, gone at logout', async () => {
    const { context } = await profile()
    const page = await context.newPage()
    const user = await h.addUser()
    await signIn(page, user)
    await page.waitForSelector('#claims tr[data-claim="jkt"]')
    const jkt = await page.textContent('#claims tr[data-claim="jkt"] td')
    expect(jkt).toMatch(/^[\w-]{43}$/)
    await page.waitForFunction(
      () =>
        (globalThis as unknown as PageGlobals).document.getElementById('dpop-thumbprint')
          ?.textContent !== '–',
    )
    expect(await page.textContent('#dpop-thumbprint')).toBe(jkt)
    const [session] = await h.sessions.listSessions(user.sub)
    expect(session?.jkt).toBe(jkt)

    // Another tab signs with the same key: its refresh and its /me pass as the same binding.
    const other = await openTab(context)
    await other.waitForSelector('#claims tr[data-claim="jkt"]')
    expect(await other.textContent('#claims tr[data-claim="jkt"] td')).toBe(jkt)

    await page.click('#logout')
    await signedOut(page)
    const stored = await page.evaluate(
      () =>
        new Promise<boolean>((resolve, reject) => {
          const request = (
            globalThis as unknown as { indexedDB: { open(name: string): IdbRequest } }
          ).indexedDB.open('rotating-token-service')
          request.onerror = () => reject(request.error)
          request.onsuccess = () => {
            const db = request.result
            const get = db.transaction('keys', 'readonly').objectStore('keys').get('dpop')
            get.onsuccess = () => resolve(get.result !== undefined)
            get.onerror = () => reject(get.error)
          }
        }),
    )
    expect(stored).toBe(false)
  })

  it('logout revokes the session and clears the cookie', async () => {
    const { context } = await profile()
    const page = await context.newPage()
    const user = await h.addUser()
    await signIn(page, user)
    await page.click('#logout')
    await signedOut(page)
    expect(await page.textContent('#notice')).toContain('Signed out')
    expect((await context.cookies(origin)).map((c) => c.name)).not.toContain(COOKIE)
    const [session] = await h.sessions.listSessions(user.sub)
    expect(session?.status).toBe('revoked')
    await page.reload()
    await signedOut(page) // nothing left to restore
  })

  it('"log out everywhere" ends the other tab and the other browser', async () => {
    const user = await h.addUser()
    const here = await profile()
    const a = await here.context.newPage()
    await signIn(a, user)
    const b = await openTab(here.context)
    const there = await profile()
    const c = await there.context.newPage()
    await signIn(c, user)

    // It asks first; cancelled, nothing ends.
    a.once('dialog', (dialog) => void dialog.dismiss())
    await a.click('#logout-everywhere')
    expect(await callMe(a)).toContain('200')
    const asked = new Promise<string>((resolve) =>
      a.once('dialog', (dialog) => {
        resolve(dialog.message())
        void dialog.accept()
      }),
    )
    await a.click('#logout-everywhere')
    expect(await asked).toMatch(/^Log out everywhere\? Every session of yours ends/)
    await signedOut(a)
    expect(await a.textContent('#notice')).toContain('every device')
    await signedOut(b) // told by tab A at once
    expect(await b.textContent('#notice')).toContain('another tab')

    // The other browser learns at its next refresh, which the server refuses.
    await advance(there.context, 50)
    await signedOut(c)
    expect(await c.textContent('#notice')).toContain('session has ended')
    expect((await there.context.cookies(origin)).map((cookie) => cookie.name)).not.toContain(COOKIE)
  })

  it('changes the password from the page: this browser stays signed in, the other browser is signed out', async () => {
    const newPassword = 'changed in the browser'
    const wrong = 'not the current password'
    recordSecret(newPassword, wrong)
    const user = await h.addUser()
    const here = await profile()
    const a = await here.context.newPage()
    await signIn(a, user)
    const there = await profile()
    const c = await there.context.newPage()
    await signIn(c, user)

    await a.fill('#current-password', wrong)
    await a.fill('#new-password', newPassword)
    await a.click('#password-button')
    await a.waitForSelector('#password-error:not([hidden])')
    expect(await a.textContent('#password-error')).toBe('The current password is wrong.')
    expect(await a.getAttribute('#status', 'data-state')).toBe('signed-in')

    await a.fill('#current-password', PASSWORD)
    await a.fill('#new-password', newPassword)
    await a.click('#password-button')
    await a.waitForSelector('#password-done:not([hidden])')
    expect(await a.isHidden('#password-error')).toBe(true)
    expect(await a.inputValue('#new-password')).toBe('')
    await a.waitForFunction(
      () =>
        (
          globalThis as unknown as {
            document: { querySelectorAll(s: string): { length: number } }
          }
        ).document.querySelectorAll('#sessions li').length === 1,
    )
    expect(await callMe(a)).toContain('GET /me → 200')

    // The other browser learns at its next refresh, which the server refuses.
    await advance(there.context, 50)
    await signedOut(c)
    // This one goes on refreshing.
    const before = await expiresAt(a)
    await advance(here.context, 50)
    await newTokenAfter(a, before)
    expect(await a.getAttribute('#status', 'data-state')).toBe('signed-in')

    // The new password signs in; the old one no longer does.
    await c.fill('#username', user.username)
    await c.fill('#password', PASSWORD)
    await c.click('#login-button')
    await c.waitForSelector('#login-error:not([hidden])')
    await c.fill('#password', newPassword)
    await c.click('#login-button')
    await signedIn(c)
  })

  it('a page on another origin cannot refresh with the cookie', async () => {
    const observed = await profile()
    const user = await h.addUser()
    const page = await observed.context.newPage()
    await signIn(page, user)
    const before = { generation: await generation(user), requests: observed.tokenRequests() }

    const attacker = await observed.context.newPage()
    await attacker.goto(`${elsewhereOrigin}/`)
    const viaFetch = await attacker.evaluate(async (target) => {
      try {
        const response = await fetch(`${target}/token`, {
          method: 'POST',
          credentials: 'include',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'grant_type=refresh_token&client_id=test-browser',
        })
        return `read ${response.status}: ${await response.text()}`
      } catch (error) {
        return `blocked: ${(error as Error).name}`
      }
    }, origin)
    expect(viaFetch).toBe('blocked: TypeError')

    await Promise.all([
      attacker.waitForURL(`${origin}/token`),
      attacker.evaluate(() =>
        (globalThis as unknown as PageGlobals).document.forms.namedItem('steal')?.submit(),
      ),
    ])
    const answer = (await attacker.textContent('body')) ?? ''
    expect(answer).toContain('access_denied')
    expect(answer).not.toContain('access_token')

    expect(observed.tokenRequests()).toBe(before.requests + 2) // both sent, neither rotated
    expect(await generation(user)).toBe(before.generation)
    expect(await callMe(page)).toContain('GET /me → 200')
  })
})
