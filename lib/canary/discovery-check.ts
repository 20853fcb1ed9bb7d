/**
 * The synthetic check of the token service (lib/token-service-canary.ts), as the source
 * CloudWatch Synthetics runs: inline in the template, so that nothing is downloaded at run
 * time, and a string here, so that the construct package (one bundled file) carries it.
 * Plain Node (global fetch), no Synthetics library: test/infra/canary.test.ts runs it as is.
 * It fetches discovery and JWKS at `ISSUER` as a verifier would, and fails unless both are
 * served and consistent.
 */
export const DISCOVERY_CHECK_CODE = `const check = (condition, why) => {
  if (!condition) throw new Error(why)
}

async function getJson(url) {
  const response = await fetch(url, {
    headers: { accept: 'application/json', 'user-agent': 'token-service-canary' },
    redirect: 'error',
    signal: AbortSignal.timeout(10_000),
  })
  check(response.status === 200, \`\${url} answered \${response.status}\`)
  return response.json()
}

exports.handler = async () => {
  const issuer = process.env.ISSUER
  check(issuer, 'ISSUER is not set')
  const discovery = await getJson(\`\${issuer}/.well-known/openid-configuration\`)
  check(
    discovery.issuer === issuer,
    \`discovery names the issuer \${discovery.issuer}, not \${issuer}\`,
  )
  const jwksUri = \`\${issuer}/.well-known/jwks.json\`
  check(discovery.jwks_uri === jwksUri, \`discovery names the JWKS \${discovery.jwks_uri}\`)
  const jwks = await getJson(jwksUri)
  const keys = Array.isArray(jwks.keys) ? jwks.keys : []
  check(keys.length > 0, 'the JWKS holds no key')
  for (const key of keys) check(key.kid && key.kty && key.alg, 'a JWKS key lacks kid, kty or alg')
  console.log(
    \`discovery and JWKS served: \${keys.length} key(s), \${keys.map((key) => key.kid).join(', ')}\`,
  )
  return 'ok'
}
`
