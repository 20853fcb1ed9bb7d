import { Annotations, Duration, Stack, Token, Validations } from 'aws-cdk-lib'
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway'
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2'
import { HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers'
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations'
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb'
import * as logs from 'aws-cdk-lib/aws-logs'
import * as route53 from 'aws-cdk-lib/aws-route53'
import * as route53Targets from 'aws-cdk-lib/aws-route53-targets'
import type { Construct } from 'constructs'
import type { ClientConfig } from '../functions/core/clients.js'
import { CORS, type HttpFunction, ROUTES } from '../functions/routes.js'
import { DEFAULTS } from './defaults.js'
import { TokenAuthorizer } from './token-authorizer.js'
import type { TokenFunction } from './token-function.js'
import { buildEdge, EDGE_WAF_REGION, EdgeWebAcl, type ServiceEdge } from './token-service-edge.js'
import type { ResolvedProps, ThrottleProps } from './token-service-props.js'

/**
 * The HTTP API of the token service, built in three steps whose order the types hold.
 * The issuer is the seam: API, then functions, then routes.
 *
 * 1. `buildApi` creates the API, its stage and the custom domain, and so fixes the
 *    issuer: the API's endpoint unless the props name one.
 * 2. The functions are built with that issuer in their environment, and the route
 *    authorizer (`buildRouteAuthorizer`) with it as the `iss` it requires.
 * 3. `addRoutes` adds every route, once, last: it needs the functions and the
 *    authorizer, and it holds every ordering constraint among routes, stage and
 *    authorizer itself (see there).
 */

/** The native JWT authorizer's id: CDK creates it under the HTTP API when a route binds it. */
const JWT_AUTHORIZER_ID = 'JwtAuthorizer'

/** The API, its stage and address: what the functions and the routes are built on. */
export interface ServiceApi {
  readonly api: apigwv2.HttpApi
  readonly stage: apigwv2.HttpStage
  readonly accessLogs: logs.LogGroup
  readonly domainName?: apigwv2.DomainName
  /** Base URL of the API: the custom domain if any, else the execute-api endpoint. */
  readonly url: string
  /** The `iss` claim: given, else `url`. */
  readonly issuer: string
  /** What makes the issuer's address answer (domain, mapping, DNS records): the JWT authorizer waits for it. */
  readonly domainResources: readonly Construct[]
  /** CloudFront and WAF in front of the API, with `edge` on. */
  readonly edge?: ServiceEdge
}

/** Step 1: the HTTP API (`Api`), its access logs, its `$default` stage and the custom domain. */
export function buildApi(scope: Construct, resolved: ResolvedProps): ServiceApi {
  const { domain } = resolved
  const api = new apigwv2.HttpApi(scope, 'Api', {
    description: 'Token service: login, refresh, revoke, sessions, JWKS and discovery',
    createDefaultStage: false,
    // With a custom domain, the issuer is the only address: the execute-api one is closed.
    disableExecuteApiEndpoint: domain !== undefined,
    ...corsFor(resolved.clients),
  })
  const accessLogs = new logs.LogGroup(scope, 'ApiAccessLogs', {
    logGroupName: resolved.accessLogGroupName,
    retention: resolved.logRetention,
    removalPolicy: resolved.removalPolicy,
  })
  const stage = new apigwv2.HttpStage(scope, 'Stage', {
    httpApi: api,
    stageName: '$default',
    autoDeploy: true,
    throttle: resolved.throttle,
    // Per-route metrics, for each route's p99 alarm (custom-metric prices, docs/operations.md).
    detailedMetricsEnabled: true,
    accessLogSettings: {
      destination: new apigwv2.LogGroupLogDestination(accessLogs),
      // Context values only: no header, query string or body, so no token or password.
      format: AccessLogFormat.custom(
        JSON.stringify({
          requestId: '$context.requestId',
          ip: '$context.identity.sourceIp',
          requestTime: '$context.requestTimeEpoch',
          method: '$context.httpMethod',
          routeKey: '$context.routeKey',
          status: '$context.status',
          protocol: '$context.protocol',
          responseLength: '$context.responseLength',
          responseLatency: '$context.responseLatency',
          integrationLatency: '$context.integrationLatency',
          integrationStatus: '$context.integrationStatus',
          // The function's own request id (`function_request_id` in its logs): the join key.
          integrationRequestId: '$context.integration.requestId',
          integrationError: '$context.integrationErrorMessage',
          authorizerError: '$context.authorizer.error',
          error: '$context.error.message',
        }),
      ),
    },
  })

  const domainResources: Construct[] = []
  let domainName: apigwv2.DomainName | undefined
  if (domain) {
    domainName = new apigwv2.DomainName(scope, 'DomainName', {
      domainName: domain.domainName,
      certificate: domain.certificate,
      securityPolicy: apigwv2.SecurityPolicy.TLS_1_2,
    })
    const mapping = new apigwv2.ApiMapping(scope, 'ApiMapping', { api, domainName, stage })
    domainResources.push(domainName, mapping)
    if (domain.hostedZone) {
      const target = route53.RecordTarget.fromAlias(
        new route53Targets.ApiGatewayv2DomainProperties(
          domainName.regionalDomainName,
          domainName.regionalHostedZoneId,
        ),
      )
      const record = { zone: domain.hostedZone, recordName: domain.domainName, target }
      domainResources.push(
        new route53.ARecord(scope, 'DomainRecordA', record),
        new route53.AaaaRecord(scope, 'DomainRecordAAAA', record),
      )
    }
  }
  const edge =
    resolved.edge &&
    buildEdge(scope, api, {
      webAclArn: resolved.edge.webAclArn ?? edgeWebAclHere(scope, resolved),
      wellKnownMaxAge: resolved.jwksMaxAge,
    })
  if (edge) domainResources.push(edge.distribution)
  const url = edge ? edge.url : domain ? `https://${domain.domainName}` : api.apiEndpoint
  return {
    api,
    stage,
    accessLogs,
    ...(domainName && { domainName }),
    url,
    issuer: resolved.issuer ?? url,
    domainResources,
    ...(edge && { edge }),
  }
}

/** The edge's web ACL in this stack, which must be in us-east-1 as CloudFront requires. */
function edgeWebAclHere(scope: Construct, resolved: ResolvedProps): string {
  const { region } = Stack.of(scope)
  if (Token.isUnresolved(region) || region !== EDGE_WAF_REGION) {
    throw new Error(
      `TokenService: edge: a CloudFront web ACL lives in ${EDGE_WAF_REGION}, and this stack is in ${Token.isUnresolved(region) ? 'an unknown region' : region}. Give edgeWebAclArn, or use TokenServiceStack with env.region, which builds the web ACL in a companion stack there.`,
    )
  }
  return new EdgeWebAcl(scope, 'EdgeWebAcl', {
    ratePerIp: resolved.edge?.ratePerIp ?? DEFAULTS.edgeRatePerIp,
    removalPolicy: resolved.removalPolicy,
    logRetention: resolved.logRetention,
  }).webAcl.attrArn
}

/** What protects the bearer routes: our Lambda authorizer, or the native JWT one. */
export interface RouteAuthorizer {
  /** Our Lambda authorizer; `undefined` with `authorizer: 'jwt'`. */
  readonly tokenAuthorizer?: TokenAuthorizer
  readonly authorizer: apigwv2.IHttpRouteAuthorizer
}

/** Step 2, beside the functions: the route authorizer, requiring `issuer` (`Authorizer` in `scope`). */
export function buildRouteAuthorizer(
  scope: Construct,
  resolved: ResolvedProps,
  {
    issuer,
    table,
    requestOrigin,
  }: { readonly issuer: string; readonly table: dynamodb.ITable; readonly requestOrigin?: string },
): RouteAuthorizer {
  if (resolved.authorizer.kind === 'lambda') {
    const tokenAuthorizer = new TokenAuthorizer(scope, 'Authorizer', {
      ...resolved.authorizer.props,
      issuer,
      table,
      ...(requestOrigin !== undefined && { requestOrigin }),
    })
    return { tokenAuthorizer, authorizer: tokenAuthorizer.authorizer }
  }
  return {
    authorizer: new HttpJwtAuthorizer(JWT_AUTHORIZER_ID, issuer, {
      jwtAudience: [...resolved.authorizer.audiences],
      identitySource: ['$request.header.Authorization'],
    }),
  }
}

/**
 * Step 3: every route of functions/routes.ts, each on its function's integration,
 * the bearer ones behind `authorizer`. Call it once, after the functions and the
 * authorizer. It holds the constraints CloudFormation and API Gateway put on the order:
 * - a route that the stage's route settings name (`routeThrottles`) must exist before
 *   the stage: the stage depends on it;
 * - the native JWT authorizer exists only once a bearer route has bound it, and then
 *   waits for what serves the issuer's discovery (`awaitDiscovery`). Since it waits for
 *   the stage, the stage cannot wait for a bearer route: with it, `POST /me/password`
 *   has the stage-wide limit (and the per-username back-off) only.
 */
export function addRoutes(
  scope: Construct,
  resolved: ResolvedProps,
  service: ServiceApi,
  functions: Readonly<Record<HttpFunction, TokenFunction>>,
  { authorizer }: RouteAuthorizer,
): void {
  const { api, stage } = service
  const jwt = resolved.authorizer.kind === 'jwt'
  const integrations = new Map<HttpFunction, HttpLambdaIntegration>()
  const integrationOf = (name: HttpFunction) => {
    let integration = integrations.get(name)
    if (!integration) {
      integration = new HttpLambdaIntegration(`${name}-integration`, functions[name].function, {
        timeout: DEFAULTS.integrationTimeout,
      })
      integrations.set(name, integration)
    }
    return integration
  }
  const throttledRoutes = Object.keys(resolved.routeThrottles).filter(
    (routeKey) =>
      !jwt ||
      ROUTES.find((route) => `${route.method} ${route.path}` === routeKey)?.auth !== 'bearer',
  )
  // JWKS and the discovery documents.
  const discoveryRoutes: apigwv2.HttpRoute[] = []
  for (const route of ROUTES) {
    const [created] = api.addRoutes({
      path: route.path,
      methods: [apigwv2.HttpMethod[route.method]],
      integration: integrationOf(route.function),
      ...(route.auth === 'bearer' && { authorizer }),
    })
    if (!created) continue
    if (route.auth === 'none') {
      Validations.of(created).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason:
          'Public OAuth endpoint by design: /login authenticates by password, /token by the refresh token (RFC 6749 §6, public clients), /revoke by the token it revokes (RFC 7009), and JWKS/discovery publish public keys and metadata.',
      })
    }
    if (throttledRoutes.includes(`${route.method} ${route.path}`)) {
      stage.node.addDependency(created)
    }
    if (route.function === 'jwks') discoveryRoutes.push(created)
  }
  if (resolved.authorizer.kind === 'jwt') {
    awaitDiscovery(scope, service, functions.jwks, discoveryRoutes, resolved.authorizer)
  }
  const cfnStage = stage.node.defaultChild as apigwv2.CfnStage
  // A map of route keys: CDK passes it through as is, so it takes CloudFormation's casing.
  cfnStage.routeSettings = Object.fromEntries(
    throttledRoutes.map((routeKey) => {
      const limits = resolved.routeThrottles[routeKey] as ThrottleProps
      return [
        routeKey,
        { ThrottlingRateLimit: limits.rateLimit, ThrottlingBurstLimit: limits.burstLimit },
      ]
    }),
  )
}

/**
 * API Gateway reads `{issuer}/.well-known/openid-configuration` (and the JWKS it names)
 * when it creates a JWT authorizer, and refuses an issuer it cannot read ("Invalid
 * issuer"; aws-cdk issue 28061). So the authorizer waits for what serves them: the
 * discovery routes with their integration and invoke permissions, the jwks function
 * with its role, the stage (created after those routes, so its first deployment has
 * them) and, with a custom domain, the domain, its API mapping and DNS records. The
 * bearer routes wait for the authorizer; the stage waits for no bearer route.
 */
function awaitDiscovery(
  scope: Construct,
  { api, stage, issuer, domainResources }: ServiceApi,
  jwks: TokenFunction,
  discoveryRoutes: readonly apigwv2.HttpRoute[],
  { issuerOutside }: { readonly issuerOutside?: string },
): void {
  for (const route of discoveryRoutes) stage.node.addDependency(route)
  // Bound by the first bearer route above: CDK creates it only then.
  const authorizer = api.node.findChild(JWT_AUTHORIZER_ID)
  authorizer.node.addDependency(jwks, ...discoveryRoutes, stage, ...domainResources)
  if (issuerOutside) {
    Annotations.of(scope).addWarningV2(
      'token-service:jwt-authorizer-issuer',
      `authorizer "jwt": API Gateway reads ${issuer}/.well-known/openid-configuration when it creates the authorizer, and ${issuerOutside}. On a new stack, deploy with -c authorizer=lambda first, make that address serve this API, then deploy with -c authorizer=jwt (docs/operations.md "Authorizer options").`,
    )
  }
}

function corsFor(clients: readonly ClientConfig[]): Partial<apigwv2.HttpApiProps> {
  const origins = [...new Set(clients.flatMap((client) => client.allowed_origins ?? []))]
  if (origins.length === 0) return {}
  return {
    corsPreflight: {
      allowOrigins: origins,
      // Cookie-mode clients send their refresh-token cookie cross-origin.
      allowCredentials: CORS.allowCredentials,
      allowMethods: CORS.allowMethods.map((method) => apigwv2.CorsHttpMethod[method]),
      allowHeaders: CORS.allowHeaders.map((header) => header.toLowerCase()),
      exposeHeaders: CORS.exposeHeaders.map((header) => header.toLowerCase()),
      maxAge: Duration.seconds(CORS.maxAgeSeconds),
    },
  }
}
