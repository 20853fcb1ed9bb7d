/**
 * `npm start`: the whole service on localhost, on DynamoDB Local and a local
 * signing key. See docs/configuration.md "Local mode" for the variables.
 */

import { ConfigError } from '../functions/config.js'
import { loadLocalConfig } from '../local/config.js'
import { assertJava, exposureWarning, stopOnSignals } from '../local/dynamodb-local.js'
import { colourTerminal } from '../local/event-stream.js'
import { DEMO_USERNAME, startLocalMode } from '../local/mode.js'

async function main() {
  const config = loadLocalConfig()
  assertJava()
  const local = await startLocalMode(config)
  stopOnSignals(local.dynamodb, async () => {
    await new Promise<void>((resolve) => local.server.close(() => resolve()))
    await local.events.stop()
  })
  const u = local.url
  const demoPassword = process.env.DEMO_PASSWORD ? '$DEMO_PASSWORD' : config.demoPassword
  console.log(`
Token service running at ${u}  (DynamoDB Local at ${local.dynamodb.endpoint}, ${config.dataDir ? `data in ${config.dataDir}` : 'in memory'})
Demo user: ${DEMO_USERNAME}    Clients: ${[...local.service.clients.keys()].join(', ')}
Demo page: ${u}/  (sign in as ${DEMO_USERNAME} / ${demoPassword}; open it at this exact origin)

Log in:
  curl -s ${u}/login -d username=${DEMO_USERNAME} -d password=${demoPassword} -d client_id=demo-native

Refresh (use the refresh_token from the answer; every refresh returns a new one):
  curl -s ${u}/token -d grant_type=refresh_token -d client_id=demo-native -d refresh_token=<refresh_token>

Revoke (logout):
  curl -s ${u}/revoke -d client_id=demo-native -d token=<refresh_token>

Keys and metadata:
  curl -s ${u}/.well-known/jwks.json
  curl -s ${u}/.well-known/openid-configuration

Behind the authorizer (use the access_token from the login answer${local.service.strict ? '; strict mode: logout ends access within seconds' : ''}):
  curl -s ${u}/me -H "Authorization: Bearer <access_token>"
  curl -s ${u}/sessions -H "Authorization: Bearer <access_token>"
  curl -s -X DELETE ${u}/sessions/<sid> -H "Authorization: Bearer <access_token>"   (end one session)
  curl -s -X DELETE ${u}/sessions -H "Authorization: Bearer <access_token>"         (logout everywhere)

Security events (docs/events.md) are printed below as they happen, one JSON line each${colourTerminal() ? ', in yellow' : ''}.

Ctrl-C stops the service and DynamoDB Local.`)
  const warning = exposureWarning(local.dynamodb)
  if (warning) console.warn(`\n${warning}`)
}

main().catch((error) => {
  // One line, no stack: the messages here are written for the person at the terminal.
  const message =
    error instanceof ConfigError || error instanceof Error ? error.message : String(error)
  console.error(`npm start: ${message}`)
  process.exit(1)
})
