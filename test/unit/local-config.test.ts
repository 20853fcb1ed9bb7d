import { describe, expect, it } from 'vitest'
import { followPort, loadLocalConfig } from '../../local/config.js'

describe('local mode settings', () => {
  const clients = JSON.stringify([
    { client_id: 'a', allowed_origins: ['http://localhost:3000', 'https://app.example.com'] },
    { client_id: 'b', allowed_origins: ['http://127.0.0.1:3000'] },
    { client_id: 'c' },
  ])

  it('moves the demo clients’ localhost:3000 origins to PORT, and no other origin', () => {
    expect(JSON.parse(followPort(clients, 3100))).toEqual([
      { client_id: 'a', allowed_origins: ['http://localhost:3100', 'https://app.example.com'] },
      { client_id: 'b', allowed_origins: ['http://127.0.0.1:3100'] },
      { client_id: 'c' },
    ])
    expect(followPort(clients, 3000)).toBe(clients)
  })

  it('defaults to port 3000, DynamoDB Local on 8000, the demo clients, and the plain authorizer', () => {
    expect(loadLocalConfig({})).toMatchObject({
      port: 3000,
      issuer: 'http://localhost:3000',
      clientsFile: 'clients.local.json',
      dynamodbPort: 8000,
      strict: false,
    })
    expect(loadLocalConfig({ PORT: '3100' }).issuer).toBe('http://localhost:3100')
    expect(loadLocalConfig({ AUTHORIZER_STRICT: 'true' }).strict).toBe(true)
  })

  it('refuses a bad value, naming the variable', () => {
    expect(() => loadLocalConfig({ PORT: '70000' })).toThrow(/PORT must be a port number/)
    expect(() => loadLocalConfig({ DYNAMODB_PORT: 'x' })).toThrow(/DYNAMODB_PORT/)
    expect(() => loadLocalConfig({ AUTHORIZER_STRICT: 'yes' })).toThrow(/AUTHORIZER_STRICT/)
  })
})
