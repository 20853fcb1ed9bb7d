import { lambdaHttpHandler } from '../adapters/lambda.js'
import { createObservability } from '../adapters/observability.js'
import { loadHttpConfig } from '../config.js'
import { meRoute } from './route.js'

// Cold start: configuration (the clients' origins, for CORS) and logging; no AWS client.
const { clients } = loadHttpConfig()

export const handler = lambdaHttpHandler('me', meRoute, undefined, {
  clients,
  observability: createObservability(),
})
