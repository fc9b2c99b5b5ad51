import { request } from 'node:http'
import Fastify from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { sendPooled } from '../../src/api/pooled-reply.ts'
import { createBufferPool } from '../../src/store/buffer-pool.ts'
import type { FastifyInstance } from 'fastify'

const CHUNK = 256 * 1024
const fill = (i: number): number => (i * 37 + 11) & 0xff

/**
 * A body of `chunks` pooled buffers, each filled with its own byte value. The pool keeps only
 * two buffers, so every release is followed at once by a take that overwrites the buffer: a
 * chunk given back before the socket wrote it reaches the client with another chunk's bytes.
 */
async function serve (chunks: number, onEnd: (info: { released: number, finished: boolean }) => void): Promise<{ app: FastifyInstance, port: number }> {
  const app = Fastify()
  app.get<{ Querystring: { n?: string } }>('/body', async (req, reply) => {
    const count = req.query.n == null ? chunks : Number(req.query.n)
    const pool = createBufferPool({ bufferBytes: CHUNK, maxFree: 2 })
    let released = 0
    const release = pool.release.bind(pool)
    pool.release = (view) => { released++; release(view) }
    let finished = false
    const source = async function * (): AsyncGenerator<Uint8Array> {
      try {
        for (let i = 0; i < count; i++) {
          const buf = pool.take(CHUNK)
          buf.fill(fill(i))
          yield buf
        }
        finished = true
      } finally {
        setImmediate(() => { onEnd({ released, finished }) })
      }
    }
    reply.header('content-type', 'application/octet-stream')
    await sendPooled(reply, source(), pool)
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  if (address == null || typeof address === 'string') throw new Error('no address')
  return { app, port: address.port }
}

describe('pooled reply', () => {
  let app: FastifyInstance | undefined
  afterEach(async () => { await app?.close() })

  it('a slow reader gets every chunk intact although the two buffers are reused all the time', async () => {
    const chunks = 48
    let ended: { released: number, finished: boolean } | undefined
    const served = await serve(chunks, (info) => { ended = info })
    app = served.app
    const body = await new Promise<Buffer>((resolve, reject) => {
      request({ host: '127.0.0.1', port: served.port, path: '/body' }, async (res) => {
        expect(res.statusCode).toBe(200)
        expect(res.headers['content-type']).toBe('application/octet-stream')
        const parts: Buffer[] = []
        for await (const part of res) {
          parts.push(part as Buffer)
          // reads lag behind the writes, so chunks wait in the socket while the source moves on
          await new Promise(resolve => setTimeout(resolve, 1))
        }
        resolve(Buffer.concat(parts))
      }).on('error', reject).end()
    })
    expect(body.byteLength).toBe(chunks * CHUNK)
    for (let i = 0; i < chunks; i++) {
      const chunk = body.subarray(i * CHUNK, (i + 1) * CHUNK)
      const expected = fill(i)
      expect(chunk.every(b => b === expected), `chunk ${i}`).toBe(true)
    }
    await expect.poll(() => ended).toEqual({ released: chunks, finished: true })
  })

  it('a client that goes away stops the source, and the server goes on serving', async () => {
    let ended: { released: number, finished: boolean } | undefined
    const served = await serve(4096, (info) => { ended = info })
    app = served.app
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: served.port, path: '/body' }, (res) => {
        res.once('data', () => {
          req.destroy()
          resolve()
        })
      })
      req.on('error', () => {})
      req.on('close', resolve)
      req.end()
      setTimeout(() => { reject(new Error('no data')) }, 10_000).unref()
    })
    await expect.poll(() => ended, { timeout: 10_000 }).toMatchObject({ finished: false })
    const res = await fetch(`http://127.0.0.1:${served.port}/body?n=3`)
    expect((await res.arrayBuffer()).byteLength).toBe(3 * CHUNK)
  })
})
