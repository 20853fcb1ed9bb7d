/**
 * ES256 signatures in their one accepted spelling (docs/security.md "One token,
 * one encoding"). ECDSA has two valid signatures for each (r, s): (r, s) and
 * (r, n - s). KMS returns either; the signer keeps the low one (s <= n/2) and
 * the authorizer accepts only that, so that a token has exactly one string.
 */

/** Half the order n of P-256, as 32 big-endian bytes: S above it is "high". */
const HALF_ORDER = Buffer.from(
  '7fffffff800000007fffffffffffffffde737d56d38bcf4279dce5617e3192a8',
  'hex',
)
const ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n

/** True when the S half of a 64-byte R||S signature is at most n/2. */
export function hasLowS(signature: Uint8Array): boolean {
  return signature.length === 64 && Buffer.compare(signature.subarray(32), HALF_ORDER) <= 0
}

/** The same signature with S replaced by n - S when S is high; unchanged otherwise. */
export function toLowS(signature: Uint8Array): Uint8Array {
  if (signature.length !== 64) throw new Error('an ES256 signature is 64 bytes of R||S')
  if (hasLowS(signature)) return signature
  const s = BigInt(`0x${Buffer.from(signature.subarray(32)).toString('hex')}`)
  const lowS = Buffer.from((ORDER - s).toString(16).padStart(64, '0'), 'hex')
  return Buffer.concat([signature.subarray(0, 32), lowS])
}
