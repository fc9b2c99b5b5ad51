import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import multipart from '@fastify/multipart'
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeMultipart, measurePath, pathParts, stdinPart } from '../../src/cli/multipart.ts'
import type { FormPart } from '../../src/cli/multipart.ts'

interface Parsed {
  field: string
  path: string
  type: string
  content: string
}

describe('multipart encoder', () => {
  let app: FastifyInstance
  let url: string
  let dir: string
  const digests: string[] = []

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pinbox-cli-multipart-'))
    app = Fastify()
    await app.register(multipart, { limits: { fileSize: 1024 ** 3 } })
    app.post('/echo', async (request) => {
      const parts: Parsed[] = []
      for await (const part of request.parts()) {
        if (part.type !== 'file') continue
        const chunks: Buffer[] = []
        for await (const c of part.file as AsyncIterable<Buffer>) chunks.push(c)
        // The server side decodes the filename the way Kubo-compatible servers do.
        const bytes = Buffer.concat(chunks)
        parts.push({ field: part.fieldname, path: decodeURIComponent(part.filename), type: part.mimetype, content: bytes.length > 4096 ? '' : bytes.toString('utf8') })
        if (bytes.length > 4096) digests.push(createHash('sha256').update(bytes).digest('hex'))
      }
      return parts
    })
    url = await app.listen({ host: '127.0.0.1', port: 0 })
  })
  afterAll(async () => {
    await app.close()
    await rm(dir, { recursive: true, force: true })
  })

  async function roundTrip (parts: AsyncIterable<FormPart> | Iterable<FormPart>): Promise<Parsed[]> {
    const body = encodeMultipart(parts)
    const res = await fetch(`${url}/echo`, {
      method: 'POST',
      headers: { 'content-type': body.contentType },
      body: body.stream,
      duplex: 'half'
    } as RequestInit)
    expect(res.status).toBe(200)
    return await res.json() as Parsed[]
  }

  it('sends one file from disk under its base name', async () => {
    const file = join(dir, 'hello world.txt')
    await writeFile(file, 'hello\r\n--not-a-boundary\r\n')
    expect(await roundTrip(pathParts(file))).toEqual([
      { field: 'file', path: 'hello world.txt', type: 'application/octet-stream', content: 'hello\r\n--not-a-boundary\r\n' }
    ])
  })

  it('sends a directory tree as x-directory parts and files with relative, percent-encoded paths', async () => {
    const root = join(dir, 'photos')
    await mkdir(join(root, 'sub dir', 'deeper'), { recursive: true })
    await writeFile(join(root, 'a.txt'), 'A')
    await writeFile(join(root, '.hidden'), 'H')
    await writeFile(join(root, 'sub dir', 'ünï 100%.txt'), 'U')
    await writeFile(join(root, 'sub dir', 'deeper', 'z&y=1?.bin'), 'Z')
    await symlink('a.txt', join(root, 'link'))

    const parsed = await roundTrip(pathParts(root, { recursive: true }))
    expect(parsed).toEqual([
      { field: 'dir', path: 'photos', type: 'application/x-directory', content: '' },
      { field: 'file-1', path: 'photos/a.txt', type: 'application/octet-stream', content: 'A' },
      { field: 'symlink-2', path: 'photos/link', type: 'application/symlink', content: 'a.txt' },
      { field: 'dir-3', path: 'photos/sub dir', type: 'application/x-directory', content: '' },
      { field: 'dir-4', path: 'photos/sub dir/deeper', type: 'application/x-directory', content: '' },
      { field: 'file-5', path: 'photos/sub dir/deeper/z&y=1?.bin', type: 'application/octet-stream', content: 'Z' },
      { field: 'file-6', path: 'photos/sub dir/ünï 100%.txt', type: 'application/octet-stream', content: 'U' }
    ])
    expect(await measurePath(root, { recursive: true })).toBe(3)

    const withHidden = await roundTrip(pathParts(root, { recursive: true, hidden: true }))
    expect(withHidden.map((p) => p.path)).toContain('photos/.hidden')
  })

  it('refuses a directory without recursive', async () => {
    await mkdir(join(dir, 'plain'), { recursive: true })
    await expect(pathParts(join(dir, 'plain')).next()).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
  })

  it('opens a file only when its bytes are pulled: checking paths up front (as add does) holds no file open', async () => {
    const file = join(dir, 'checked.txt')
    await writeFile(file, 'checked')
    for (let i = 0; i < 20; i++) await pathParts(file).next()
    await new Promise(resolve => setTimeout(resolve, 50))
    const open = await Promise.all((await readdir('/proc/self/fd')).map(async fd => await readlink(`/proc/self/fd/${fd}`).catch(() => '')))
    expect(open.filter(target => target === file)).toHaveLength(0)
  })

  it('sends stdin as one unnamed file', async () => {
    const stdin = Readable.from([Buffer.from('from '), Buffer.from('stdin')])
    expect(await roundTrip([stdinPart(stdin)])).toEqual([
      { field: 'file', path: '', type: 'application/octet-stream', content: 'from stdin' }
    ])
  })

  it('streams a large file intact', async () => {
    const big = Buffer.alloc(8 * 1024 * 1024 + 7)
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff
    const file = join(dir, 'big.bin')
    await writeFile(file, big)
    const body = encodeMultipart(pathParts(file))
    const res = await fetch(`${url}/echo`, { method: 'POST', headers: { 'content-type': body.contentType }, body: body.stream, duplex: 'half' } as RequestInit)
    expect(res.status).toBe(200)
    expect(digests.pop()).toBe(createHash('sha256').update(big).digest('hex'))
  })

  it('pulls parts lazily: reading a few chunks reads only a few chunks from the source', async () => {
    let produced = 0
    async function * endless (): AsyncGenerator<Uint8Array> {
      while (true) {
        produced++
        yield new Uint8Array(64 * 1024)
      }
    }
    const { stream } = encodeMultipart([{ path: 'endless', content: endless() }])
    const reader = stream.getReader()
    for (let i = 0; i < 5; i++) await reader.read()
    await reader.cancel()
    expect(produced).toBeLessThan(10)
  })

  it('ends an empty upload with just the closing boundary', async () => {
    const text = await new Response(encodeMultipart([], { boundary: 'XYZ' }).stream).text()
    expect(text).toBe('--XYZ--\r\n')
  })
})
