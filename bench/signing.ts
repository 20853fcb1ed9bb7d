/**
 * `npm run bench` (part): what signing an access token costs per token.
 *
 * - Envelope keys (`signing: 'envelope'`): the private key in memory, as
 *   functions/adapters/envelope-signer.ts signs (RS256; ES256 as 64-byte R||S
 *   with a low S), alone and as the whole access token (claims, JSON,
 *   base64url, signature).
 * - KMS keys (`signing: 'kms'`): one `Sign` round trip through the AWS SDK to
 *   the stack suite's KMS stand-in on loopback (test/stack/cloud.ts: SigV4,
 *   HTTP, the signature), sequential: the floor of a KMS round trip, without
 *   the network between a function and KMS in AWS.
 *
 * Medians and means of tinybench rounds; the machine is shared: compare
 * within the table.
 */
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { KMSClient, SignCommand } from '@aws-sdk/client-kms'
import { Bench } from 'tinybench'
import { signInMemory } from '../functions/adapters/envelope-signer.js'
import { issueAccessToken } from '../functions/core/access-token.js'
import { parseClients } from '../functions/core/clients.js'
import type { Session, Signer, SigningAlgorithm, User } from '../functions/core/ports.js'
import { Cloud, REGION } from '../test/stack/cloud.js'

const user: User = {
  sub: '6f1c1a3e-8f6a-4c52-9a42-5f0b6f7f2a11',
  username: 'bench',
  passwordHash: '',
  roles: ['reader'],
  status: 'active',
  createdAt: 0,
}
const session: Session = {
  sid: 'AAAAAAAAAAAAAAAAAAAAAA',
  sub: user.sub,
  clientId: 'bench',
  scope: 'openid api',
  status: 'active',
  createdAt: 0,
  lastUsedAt: 0,
  idleExpiresAt: 0,
  absoluteExpiresAt: 0,
  generation: 0,
  currentHash: 'x',
}
const client = parseClients([
  { client_id: 'bench', type: 'native', audience: 'https://api.bench.example' },
]).get('bench')

/** A signer that signs in memory, as the envelope signer does once its key is unwrapped. */
const inMemory = (alg: SigningAlgorithm, key: KeyObject): Signer => ({
  alg,
  keyId: async () => 'bench-kid',
  publicKeys: async () => [],
  sign: async (input) => signInMemory(alg, key, input),
})

/** A KMS client for the stand-in, with a caller allowed to sign with its two keys. */
async function kmsStandIn() {
  const cloud = new Cloud('http://127.0.0.1:9')
  await cloud.start()
  const template = {
    stackName: 'Bench',
    codeDirectory: () => '',
    resources: Object.fromEntries(
      (['RSA_2048', 'ECC_NIST_P256'] as const).map((spec) => [
        `Key${spec.replace(/_/g, '')}`,
        {
          Type: 'AWS::KMS::Key',
          Properties: {
            KeySpec: spec,
            KeyUsage: 'SIGN_VERIFY',
            KeyPolicy: {
              Statement: [
                {
                  Effect: 'Allow',
                  Principal: { AWS: 'arn:aws:iam::000000000000:root' },
                  Action: 'kms:*',
                  Resource: '*',
                },
              ],
            },
          },
        },
      ]),
    ),
  }
  await cloud.provision(template)
  cloud.callers.set('ASIABENCH', {
    name: 'bench',
    accessKeyId: 'ASIABENCH',
    statements: [{ Effect: 'Allow', Action: 'kms:Sign', Resource: '*' }],
    calls: new Map(),
  })
  const kms = new KMSClient({
    region: REGION,
    endpoint: cloud.endpoint,
    credentials: { accessKeyId: 'ASIABENCH', secretAccessKey: 'bench' },
  })
  const keyArn = (spec: string) => cloud.attribute(template, `Key${spec.replace(/_/g, '')}`, 'Arn')
  return { cloud, kms, keyArn }
}

export async function signing(): Promise<void> {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
  const input = Buffer.from(`${'e'.repeat(36)}.${'p'.repeat(420)}`)
  const digest = createHash('sha256').update(input).digest()
  const stand = await kmsStandIn()
  const settings = { issuer: 'https://auth.bench.example', backdateSeconds: 5 }
  const token = (signer: Signer) =>
    issueAccessToken(signer, settings, {
      user,
      session,
      client: client as NonNullable<typeof client>,
      scope: 'openid api',
      now: Date.now(),
    })
  const bench = new Bench({ time: 400, warmupTime: 100 })
  bench
    .add('envelope RS256: sign in memory', () => {
      signInMemory('RS256', rsa, input)
    })
    .add('envelope ES256: sign in memory', () => {
      signInMemory('ES256', ec, input)
    })
    .add('envelope RS256: whole access token', async () => {
      await token(inMemory('RS256', rsa))
    })
    .add('envelope ES256: whole access token', async () => {
      await token(inMemory('ES256', ec))
    })
    .add('kms RS256: one Sign round trip (loopback stand-in)', async () => {
      await stand.kms.send(
        new SignCommand({
          KeyId: stand.keyArn('RSA_2048'),
          Message: digest,
          MessageType: 'DIGEST',
          SigningAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_256',
        }),
      )
    })
  await bench.run()
  stand.kms.destroy()
  await stand.cloud.stop()
  console.log(
    '\nSigning an access token, per token (in memory with envelope keys; a KMS round trip with KMS keys)',
  )
  console.log('  task                                                   p50 ms    mean ms   ops/s')
  for (const task of bench.tasks) {
    const result = task.result
    if (!('latency' in result)) throw new Error(`${task.name}: ${result.state}`)
    const { p50 = Number.NaN, mean } = result.latency
    console.log(
      `  ${task.name.padEnd(52)} ${p50.toFixed(3).padStart(8)} ${mean.toFixed(3).padStart(10)} ${Math.round(
        1000 / mean,
      )
        .toString()
        .padStart(7)}`,
    )
  }
}
