import { CfnOutput, type RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib'
import type { Construct } from 'constructs'
import type { ClientConfig } from '../functions/core/clients.js'
import { type SigningAlgorithm, TokenService } from './token-service.js'

export interface TokenServiceStackProps extends StackProps {
  /** The OAuth clients (DESIGN.md "Clients"). */
  readonly clients: ClientConfig[]
  /**
   * The `iss` claim and the base URL of the discovery documents.
   * @default the HTTP API's endpoint
   */
  readonly issuer?: string
  /** @default 'RS256' */
  readonly algorithm?: SigningAlgorithm
  /** @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy
}

export class TokenServiceStack extends Stack {
  public readonly service: TokenService

  constructor(scope: Construct, id: string, props: TokenServiceStackProps) {
    super(scope, id, props)
    this.service = new TokenService(this, 'TokenService', {
      clients: props.clients,
      ...(props.issuer !== undefined && { issuer: props.issuer }),
      ...(props.algorithm !== undefined && { algorithm: props.algorithm }),
      ...(props.removalPolicy !== undefined && { removalPolicy: props.removalPolicy }),
    })
    new CfnOutput(this, 'ApiUrl', {
      description: 'Base URL of the token service HTTP API',
      value: this.service.api.apiEndpoint,
    })
    new CfnOutput(this, 'Issuer', { description: 'The iss claim', value: this.service.issuer })
    new CfnOutput(this, 'JwksUri', {
      description: 'Where verifiers fetch the public keys',
      value: `${this.service.issuer}/.well-known/jwks.json`,
    })
    new CfnOutput(this, 'TableName', { value: this.service.table.tableName })
    new CfnOutput(this, 'SigningKeyArn', { value: this.service.signingKey.keyArn })
  }
}
