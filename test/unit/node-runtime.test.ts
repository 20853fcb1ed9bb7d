import { readFileSync } from 'node:fs'
import * as lambda from 'aws-cdk-lib/aws-lambda'
import { describe, expect, it } from 'vitest'
import { LAMBDA_BUNDLING } from '../../lib/bundling.js'

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
  devDependencies: Record<string, string>
}
const major = (version: string) => Number(/\d+/.exec(version)?.[0])

describe('the Node that runs the tests', () => {
  it('is the Lambda runtime’s: the node devDependency, pinned, in every test worker', () => {
    const pinned = pkg.devDependencies.node as string
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/)
    expect(process.version).toBe(`v${pinned}`)
    // What the functions deploy on (lib/token-function.ts) and what esbuild targets.
    expect(lambda.Runtime.NODEJS_24_X.name).toBe(`nodejs${major(pinned)}.x`)
    expect(LAMBDA_BUNDLING.target).toBe(`node${major(pinned)}`)
  })
})
