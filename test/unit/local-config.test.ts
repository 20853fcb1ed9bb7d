import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ConfigError } from '../../functions/config.js'
import { followPort, loadLocalConfig } from '../../local/config.js'
import { readClientsFile } from '../../local/mode.js'

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

describe('the clients file of local mode (CLIENTS_FILE)', () => {
  const file = (text: string) => {
    const path = join(mkdtempSync(join(tmpdir(), 'clients-')), 'clients.json')
    writeFileSync(path, text)
    return path
  }

  it('names the file and the key of a typo, not the CLIENTS variable it is handed in', async () => {
    const demo = JSON.parse(readFileSync('clients.local.json', 'utf8')) as Record<string, unknown>[]
    const path = file(JSON.stringify([{ ...demo[0], reuse_grace_secs: 0 }]))
    const refusal = readClientsFile(path)
    await expect(refusal).rejects.toThrow(ConfigError)
    await expect(refusal).rejects.toThrow(
      new RegExp(`^${path}: clients\\[0\\]\\.reuse_grace_secs is not a client setting`),
    )
  })

  it('names the file when it is not JSON, or missing', async () => {
    await expect(readClientsFile(file('[{'))).rejects.toThrow(/clients\.json: not valid JSON \(/)
    await expect(readClientsFile('/nonexistent/clients.json')).rejects.toThrow(
      '/nonexistent/clients.json (CLIENTS_FILE) cannot be read: ENOENT',
    )
  })

  it('reads the committed demo clients as they are', async () => {
    expect(await readClientsFile('clients.local.json')).toBe(
      readFileSync('clients.local.json', 'utf8'),
    )
  })
})
