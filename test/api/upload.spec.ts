import { request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildServer } from '../../src/api/server.ts'
import { concatBytes } from '../../src/content/blocks.ts'
import { importContent } from '../../src/content/import.ts'
import { resolveImportOptions } from '../../src/content/profiles.ts'
import { bytesOf, pseudoRandom } from '../content/helpers.ts'
import { createStack } from '../helpers/stack.ts'
import type { Stack } from '../helpers/stack.ts'
import type { FastifyInstance } from 'fastify'

const TOKEN = 'upload-test-token'
const BOUNDARY = '----pinbox-upload-test-0123456789abcdef'
const enc = new TextEncoder()

describe('multipart uploads into the importer', () => {
  let stack: Stack
  let app: FastifyInstance

  beforeAll(async () => {
    stack = await createStack()
    app = buildServer(stack.components, { token: TOKEN })
  })

  afterAll(async () => {
    await app?.close()
    await stack?.close()
  })

  it('stores the bytes sent when pieces end in a false start of the boundary (views of busboy\'s lookbehind)', async () => {
    // File content cut so that busboy, after a false start of the boundary, hands out a view of its
    // lookbehind buffer on its own ("\r\n--<prefix>" then "\r\n-"): a buffer it goes on using.
    const contentPieces: Uint8Array[] = []
    for (let i = 0; i < 150; i++) {
      // every fifth fills the lookbehind buffer, so its view is the whole buffer
      const prefix = BOUNDARY.slice(0, i % 5 === 0 ? BOUNDARY.length - 1 : 1 + (i % 20))
      contentPieces.push(concatBytes([pseudoRandom(3_000 + i * 37, i + 1), enc.encode(`\r\n--${prefix}`)]))
      contentPieces.push(enc.encode('\r\n-'))
      contentPieces.push(Uint8Array.of(0x41 + (i % 26)))
    }
    const content = concatBytes(contentPieces)
    const head = enc.encode(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="tricky.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`)
    const tail = enc.encode(`\r\n--${BOUNDARY}--\r\n`)
    const pieces: Uint8Array[] = [head, ...contentPieces, tail]

    const options = resolveImportOptions('unixfs-v1-2025', { chunker: 'size-65536' })
    const expected = []
    for await (const entry of importContent({ put: async (cid) => cid }, [{ path: 'tricky.bin', content: bytesOf(content) }], { ...options, onlyHash: true })) expected.push(entry)

    // a real socket, one write per piece with a pause between, so busboy sees the cuts
    const address = await app.listen({ host: '127.0.0.1', port: 0 })
    const body = await new Promise<string>((resolve, reject) => {
      const req = request(`${address}/api/v0/add?chunker=size-65536`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': `multipart/form-data; boundary=${BOUNDARY}` }
      }, (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => { text += c })
        res.on('end', () => {
          if (res.statusCode === 200) resolve(text)
          else reject(new Error(`${res.statusCode} ${text}`))
        })
      })
      req.on('error', reject)
      req.on('socket', (socket) => { socket.setNoDelay(true) })
      void (async () => {
        for (const piece of pieces) {
          req.write(piece)
          await new Promise(resolve => setTimeout(resolve, 1))
        }
        req.end()
      })()
    })
    const line = JSON.parse(body.trim().split('\n').at(-1) as string)
    expect(line.Hash).toBe(expected.at(-1)?.cid.toString())
    const verified = []
    for await (const result of stack.components.pins.verify()) verified.push(result)
    expect(verified.every(r => r.ok)).toBe(true)
  })
})
