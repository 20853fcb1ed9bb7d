import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Region } from '../support/regions.js'
import { PRIMARY, SECONDARY, type StackRegions, startStackRegions } from './regions.js'

const EU: Region = PRIMARY
const US: Region = SECONDARY
let sim: StackRegions
let username: string

beforeAll(async () => {
  sim = await startStackRegions({
    stackName: 'TokenServiceTwoRegions',
    context: { strictRevocation: 'true' },
  })
  username = await sim.seedUser()
})

afterAll(async () => {
  await sim?.close()
})

describe('smoke', () => {
  it('logs in and refreshes across', async () => {
    const login = await sim.front(EU).login(username)
    expect(login.status, JSON.stringify(login.body)).toBe(200)
    const token = login.body.refresh_token
    const r = await sim.front(US).refresh(token)
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    expect(sim.denials()).toEqual([])
  })
})
