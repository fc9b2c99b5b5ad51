import type { BufferPool } from '../store/buffer-pool.ts'
import type { FastifyReply } from 'fastify'

/** Chunks handed to the socket and not yet written out; with 1 MiB blocks, a few MiB per reply. */
const MAX_IN_FLIGHT = 4

/**
 * Sends `source` as the reply body and gives every chunk back to `pool` once the socket has
 * written it. `reply.send(stream)` pipes, and a pipe never says when the socket is done with a
 * chunk, so this reply is written by hand (fastify's `hijack`): status and headers as set on
 * the reply, then each chunk with a write callback, which Node calls only after the bytes went
 * to the kernel or the socket was destroyed. The first chunk must already be pulled (`primed`)
 * so that errors found up front still become an error response.
 *
 * An error in the middle of the body destroys the connection, as fastify does for a piped
 * stream: the client sees a cut-off reply, never a complete-looking one.
 */
export async function sendPooled (reply: FastifyReply, source: AsyncIterable<Uint8Array>, pool: BufferPool): Promise<void> {
  reply.hijack()
  const res = reply.raw
  let inFlight = 0
  let wake: (() => void) | undefined
  const settled = (): void => {
    const w = wake
    wake = undefined
    w?.()
  }
  const waitFor = async (ready: () => boolean): Promise<void> => {
    while (!ready()) await new Promise<void>(resolve => { wake = resolve })
  }
  // a destroyed socket calls pending write callbacks (with an error) and emits close
  res.once('close', settled)
  try {
    for (const [name, value] of Object.entries(reply.getHeaders())) {
      if (value != null) res.setHeader(name, value)
    }
    res.writeHead(reply.statusCode)
    for await (const chunk of source) {
      if (res.destroyed) break
      inFlight++
      res.write(chunk, () => {
        inFlight--
        pool.release(chunk)
        settled()
      })
      await waitFor(() => res.destroyed || inFlight < MAX_IN_FLIGHT)
    }
    if (!res.destroyed) {
      // 'finish' never comes when the client goes away during the last write; 'close' does
      await new Promise<void>(resolve => {
        res.once('close', resolve)
        res.end(resolve)
      })
    }
  } catch (err) {
    reply.log.error({ err }, 'reply broken off')
    res.destroy(err as Error)
  } finally {
    res.off('close', settled)
  }
}
