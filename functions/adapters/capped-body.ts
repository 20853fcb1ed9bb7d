/**
 * A response body read no further than a cap: one that announces more
 * (`Content-Length`) is refused unread, one that streams more is cut off as
 * soon as it passes the cap, so a huge (or endless) answer costs at most the
 * cap in memory. For the calls the functions make to other services (the
 * authorizer's JWKS, the breached-password range API).
 */
export async function readCapped(
  response: Response,
  maxBytes: number,
): Promise<{ readonly text: string } | 'too large'> {
  const announced = Number(response.headers.get('content-length') ?? 0)
  const reader = response.body?.getReader()
  if (!reader) return { text: '' }
  if (announced > maxBytes) {
    await reader.cancel().catch(() => undefined)
    return 'too large'
  }
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined)
      return 'too large'
    }
    chunks.push(value)
  }
  return { text: new TextDecoder().decode(Buffer.concat(chunks)) }
}
