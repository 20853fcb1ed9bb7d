import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

export interface Asset {
  readonly contentType: string
  readonly body: string | Uint8Array
}

export interface DemoOptions {
  /** The cookie-mode client the page logs in with (60 s access tokens in local mode). @default 'demo-page' */
  readonly clientId?: string
}

const here = (name: string) => fileURLToPath(new URL(name, import.meta.url))

/**
 * The demo page's files by URL path: the HTML, the stylesheet, the icon, and
 * the demo app bundled with the client for the browser (esbuild, in memory).
 * No inline script or style anywhere: the local server's CSP is `default-src 'self'`.
 */
export async function demoAssets(options: DemoOptions = {}): Promise<ReadonlyMap<string, Asset>> {
  const clientId = options.clientId ?? 'demo-page'
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(clientId)) throw new Error(`bad client id: ${clientId}`)
  const [html, css, icon, bundle] = await Promise.all([
    readFile(here('index.html'), 'utf8'),
    readFile(here('app.css'), 'utf8'),
    readFile(here('favicon.svg'), 'utf8'),
    build({
      entryPoints: [here('app.ts')],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      minify: true,
      write: false,
      logLevel: 'silent',
    }),
  ])
  const js = bundle.outputFiles[0]?.text ?? ''
  return new Map<string, Asset>([
    [
      '/',
      {
        contentType: 'text/html; charset=utf-8',
        body: html.replace(
          '<meta name="client-id" content="demo-page" />',
          `<meta name="client-id" content="${clientId}" />`,
        ),
      },
    ],
    ['/app.css', { contentType: 'text/css; charset=utf-8', body: css }],
    ['/app.js', { contentType: 'text/javascript; charset=utf-8', body: js }],
    ['/favicon.svg', { contentType: 'image/svg+xml', body: icon }],
  ])
}
