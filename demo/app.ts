/**
 * The demo page: the client in cookie mode, with DPoP, against the service
 * that serves this page. No framework; the DOM is built with textContent only, and the
 * page's CSP (`default-src 'self'`) allows no inline script or style.
 */
import { cookieStorage, createDpop, createTokenClient, TokenClientError } from '../client/index.js'

const clientId =
  document.querySelector<HTMLMetaElement>('meta[name="client-id"]')?.content ?? 'demo-page'
const client = createTokenClient({
  baseUrl: location.origin,
  clientId,
  storage: cookieStorage(),
  // Tokens bound to a non-extractable key in IndexedDB, shared by this origin's tabs.
  dpop: createDpop(),
})

const byId = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T
const ui = {
  status: byId('status'),
  notice: byId('notice'),
  loginView: byId('login-view'),
  sessionView: byId('session-view'),
  form: byId<HTMLFormElement>('login-form'),
  username: byId<HTMLInputElement>('username'),
  password: byId<HTMLInputElement>('password'),
  loginButton: byId<HTMLButtonElement>('login-button'),
  loginError: byId('login-error'),
  ring: byId('ring'),
  countdown: byId('countdown'),
  refreshCount: byId('refresh-count'),
  lastRefresh: byId('last-refresh'),
  callMe: byId<HTMLButtonElement>('call-me'),
  greeting: byId('greeting'),
  claims: byId<HTMLTableElement>('claims'),
  sessions: byId<HTMLUListElement>('sessions'),
  logout: byId<HTMLButtonElement>('logout'),
  logoutEverywhere: byId<HTMLButtonElement>('logout-everywhere'),
  passwordForm: byId<HTMLFormElement>('password-form'),
  currentPassword: byId<HTMLInputElement>('current-password'),
  newPassword: byId<HTMLInputElement>('new-password'),
  passwordButton: byId<HTMLButtonElement>('password-button'),
  passwordError: byId('password-error'),
  passwordDone: byId('password-done'),
  log: byId<HTMLOListElement>('log'),
  cookieName: byId('cookie-name'),
  documentCookie: byId('document-cookie'),
  dpopThumbprint: byId('dpop-thumbprint'),
}

let refreshes = 0
let lifetimeMs = 60_000
let signedIn = false

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  text?: string,
  className?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag)
  if (text !== undefined) node.textContent = text
  if (className) node.className = className
  return node
}

const clockTime = (ms: number) => new Date(ms).toLocaleTimeString()

function log(kind: 'good' | 'bad' | 'info', text: string) {
  const item = element('li')
  item.dataset.kind = kind
  const time = element('time', clockTime(Date.now()))
  item.append(time, element('span', text))
  ui.log.prepend(item)
  while (ui.log.children.length > 40) ui.log.lastElementChild?.remove()
}

function setStatus(state: 'checking' | 'signed-in' | 'signed-out' | 'refreshing', text: string) {
  ui.status.dataset.state = state
  ui.status.textContent = text
}

function notice(text?: string) {
  ui.notice.hidden = !text
  ui.notice.textContent = text ?? ''
}

function showLogin(message?: string) {
  signedIn = false
  notice(message)
  ui.passwordForm.reset()
  ui.passwordError.hidden = true
  ui.passwordDone.hidden = true
  setStatus('signed-out', 'Signed out')
  ui.sessionView.hidden = true
  ui.loginView.hidden = false
  ui.loginButton.disabled = false
  ui.password.focus()
  tick()
}

async function enterSession() {
  const first = !signedIn
  signedIn = true
  notice()
  ui.loginView.hidden = true
  ui.sessionView.hidden = false
  tick()
  if (first) await Promise.all([loadMe(), loadSessions(), showKey()])
}

/** The thumbprint of the key the tokens are bound to: the `jkt` that /me shows. */
async function showKey() {
  try {
    ui.dpopThumbprint.textContent = (await client.dpopThumbprint()) ?? 'none'
  } catch {
    ui.dpopThumbprint.textContent = 'unavailable (no WebCrypto here)'
  }
}

/** The countdown: seconds left on the access token, by the client's own clock. */
function tick() {
  ui.documentCookie.textContent = JSON.stringify(document.cookie)
  const expiresAt = client.expiresAt
  if (!signedIn || expiresAt === null) {
    ui.countdown.textContent = '–'
    ui.countdown.dataset.expiresAt = ''
    return
  }
  const leftMs = Math.max(0, expiresAt - Date.now())
  ui.countdown.textContent = String(Math.ceil(leftMs / 1000))
  ui.countdown.dataset.expiresAt = String(expiresAt)
  ui.ring.style.setProperty('--p', String(Math.min(100, (leftMs / lifetimeMs) * 100)))
  ui.ring.dataset.level = leftMs === 0 ? 'expired' : leftMs < lifetimeMs * 0.25 ? 'low' : 'ok'
}

function describe(error: unknown): string {
  if (!(error instanceof TokenClientError)) return 'Something went wrong. Try again.'
  switch (error.code) {
    case 'invalid_grant':
      return 'Wrong username or password.'
    case 'access_denied':
      return `This page is not at an allowed origin of the client "${clientId}" (${location.origin}). Open it at an origin in the client's allowed_origins: http://localhost:3000 with the default clients file.`
    case 'invalid_client':
      return `The client "${clientId}" is not configured: add it (cookie_mode: true, this origin in allowed_origins) to the clients file.`
    case 'too_many_requests':
    case 'slow_down':
      return `Too many attempts. Try again in ${Math.ceil((error.retryAfterMs ?? 1000) / 1000)} s.`
    case 'network_error':
      return 'The token service does not answer. Is npm start still running?'
    default:
      return error.transient ? 'The service is busy. Try again in a moment.' : error.message
  }
}

/** Calls a bearer route; a lost session shows the login. */
async function api(path: string, init?: RequestInit): Promise<Response | undefined> {
  try {
    return await client.fetch(path, init)
  } catch (error) {
    if (error instanceof TokenClientError && error.code === 'login_required') showLogin()
    else log('bad', `${init?.method ?? 'GET'} ${path}: ${describe(error)}`)
    return undefined
  }
}

interface Claims {
  readonly sub: string
  readonly username?: string
  readonly roles?: readonly string[]
  readonly scope?: string
  readonly [claim: string]: unknown
}

async function loadMe() {
  const response = await api('/me')
  if (!response) return
  log(response.ok ? 'good' : 'bad', `GET /me → ${response.status}`)
  if (!response.ok) return
  renderClaims((await response.json()) as Claims)
}

function renderClaims(claims: Claims) {
  const name = claims.username ?? claims.sub
  ui.greeting.textContent = `Hello, ${name}`
  setStatus('signed-in', `Signed in as ${name}`)
  const body = element('tbody')
  const chips = (values: readonly string[]) => {
    const cell = element('td')
    for (const value of values) cell.append(element('span', value, 'chip'))
    return cell
  }
  const order = ['sub', 'username', 'roles', 'scope', 'client_id', 'sid', 'aud', 'iss']
  const times = ['iat', 'nbf', 'exp']
  const names = [
    ...order.filter((n) => n in claims),
    ...Object.keys(claims).filter((n) => !order.includes(n) && !times.includes(n)),
    ...times.filter((n) => n in claims),
  ]
  for (const claim of names) {
    const row = element('tr')
    row.dataset.claim = claim
    row.append(element('th', claim))
    const value = claims[claim]
    if (claim === 'roles' && Array.isArray(value)) row.append(chips(value as string[]))
    else if (claim === 'scope' && typeof value === 'string') row.append(chips(value.split(' ')))
    else if (times.includes(claim) && typeof value === 'number') {
      row.append(element('td', `${clockTime(value * 1000)}  (${value})`))
    } else row.append(element('td', typeof value === 'string' ? value : JSON.stringify(value)))
    body.append(row)
  }
  ui.claims.tBodies[0]?.replaceWith(body)
}

interface SessionRow {
  readonly sid: string
  readonly client_id: string
  readonly created_at: string
  readonly last_used_at: string
  readonly user_agent?: string
  readonly current: boolean
}

/** "Chrome on Linux" from a user agent, roughly; enough to tell sessions apart. */
function device(userAgent = ''): string {
  const browser = /Edg\//.test(userAgent)
    ? 'Edge'
    : /Chrom(e|ium)\//.test(userAgent)
      ? 'Chrome'
      : /Firefox\//.test(userAgent)
        ? 'Firefox'
        : /Safari\//.test(userAgent)
          ? 'Safari'
          : /^curl\//.test(userAgent)
            ? 'curl'
            : /node|undici/i.test(userAgent)
              ? 'Node'
              : 'An app'
  const os = /Android/.test(userAgent)
    ? 'Android'
    : /iPhone|iPad/.test(userAgent)
      ? 'iOS'
      : /Mac OS X/.test(userAgent)
        ? 'macOS'
        : /Windows/.test(userAgent)
          ? 'Windows'
          : /Linux/.test(userAgent)
            ? 'Linux'
            : ''
  return os ? `${browser} on ${os}` : browser
}

async function loadSessions() {
  const response = await api('/sessions')
  if (!response?.ok) return
  const { sessions } = (await response.json()) as { sessions: SessionRow[] }
  const items = sessions.map((session) => {
    const item = element('li')
    item.dataset.sid = session.sid
    const text = element('div')
    const what = element('div', device(session.user_agent), 'what')
    if (session.current) what.append(element('span', 'this browser', 'badge'))
    const when = element(
      'div',
      `${session.client_id} · since ${clockTime(Date.parse(session.created_at))} · last used ${clockTime(Date.parse(session.last_used_at))}`,
      'when',
    )
    text.append(what, when)
    item.append(text)
    if (!session.current) {
      const end = element('button', 'End', 'secondary')
      end.type = 'button'
      end.addEventListener('click', async () => {
        end.disabled = true
        const ended = await api(`/sessions/${encodeURIComponent(session.sid)}`, {
          method: 'DELETE',
        })
        if (ended) log(ended.ok ? 'good' : 'bad', `Ended a session → ${ended.status}`)
        await loadSessions()
      })
      item.append(end)
    }
    return item
  })
  ui.sessions.replaceChildren(...items)
}

client.on('refreshed', ({ source, expiresAt }) => {
  lifetimeMs = Math.max(1000, expiresAt - Date.now())
  if (source !== 'login') {
    refreshes++
    ui.refreshCount.textContent = String(refreshes)
    ui.lastRefresh.textContent = clockTime(Date.now())
  }
  log(
    'info',
    source === 'login'
      ? 'Signed in: new session, refresh cookie set'
      : source === 'other-tab'
        ? 'Fresh access token from another tab (no request)'
        : 'Access token refreshed, refresh token rotated',
  )
  if (!signedIn) void enterSession()
  else {
    tick()
    // Show the new token's claims and the session's new "last used".
    if (source !== 'login') void Promise.all([loadMe(), loadSessions()])
  }
})

client.on('session-expired', ({ reason }) => {
  log('bad', 'Session ended')
  showLogin(
    reason === 'logout'
      ? 'You signed out in another tab.'
      : 'Your session has ended: it was revoked, logged out everywhere, or it timed out.',
  )
})

ui.form.addEventListener('submit', async (event) => {
  event.preventDefault()
  ui.loginError.hidden = true
  ui.loginButton.disabled = true
  try {
    await client.login(ui.username.value, ui.password.value)
    ui.password.value = ''
    await enterSession()
  } catch (error) {
    ui.loginError.textContent = describe(error)
    ui.loginError.hidden = false
  } finally {
    ui.loginButton.disabled = false
  }
})

/** What went wrong with a password change, for the person who typed it. */
function describePasswordChange(error: unknown): string {
  if (!(error instanceof TokenClientError)) return describe(error)
  if (error.code === 'invalid_grant') return 'The current password is wrong.'
  // The description names the rule the new password broke (never the password).
  if (error.code === 'invalid_request') return `The new password was refused: ${error.message}.`
  return describe(error)
}

ui.passwordForm.addEventListener('submit', async (event) => {
  event.preventDefault()
  ui.passwordError.hidden = true
  ui.passwordDone.hidden = true
  ui.passwordButton.disabled = true
  try {
    await client.changePassword(ui.currentPassword.value, ui.newPassword.value)
    ui.passwordForm.reset()
    ui.passwordDone.textContent = 'Password changed. Your other sessions have ended.'
    ui.passwordDone.hidden = false
    log('good', 'POST /me/password → 204: the other sessions ended')
    await loadSessions()
  } catch (error) {
    if (error instanceof TokenClientError && error.code === 'login_required') showLogin()
    else {
      ui.passwordError.textContent = describePasswordChange(error)
      ui.passwordError.hidden = false
    }
  } finally {
    ui.passwordButton.disabled = false
  }
})

ui.callMe.addEventListener('click', () => loadMe())

ui.logout.addEventListener('click', async () => {
  ui.logout.disabled = true
  try {
    await client.logout()
    showLogin('Signed out. The refresh cookie is gone.')
  } catch (error) {
    log('bad', `Log out: ${describe(error)}`)
  } finally {
    ui.logout.disabled = false
  }
})

ui.logoutEverywhere.addEventListener('click', async () => {
  // It ends the user's sessions on every device: one click must not do that by accident.
  const sure = window.confirm(
    'Log out everywhere? Every session of yours ends: this browser, your other browsers and devices.',
  )
  if (!sure) return
  ui.logoutEverywhere.disabled = true
  try {
    const response = await api('/sessions', { method: 'DELETE' })
    if (response && !response.ok) log('bad', `DELETE /sessions → ${response.status}`)
    await client.logout()
    showLogin('Signed out on every device.')
  } catch (error) {
    log('bad', `Log out everywhere: ${describe(error)}`)
  } finally {
    ui.logoutEverywhere.disabled = false
  }
})

async function start() {
  ui.cookieName.textContent = `__Host-rt_${clientId}`
  setInterval(tick, 250)
  try {
    // A page load has no access token: the refresh cookie, if any, gets one.
    if (await client.getAccessToken()) {
      log('good', 'Session restored from the refresh cookie')
      await enterSession()
    } else showLogin()
  } catch (error) {
    showLogin(describe(error))
  }
}

void start()
