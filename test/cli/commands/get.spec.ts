import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tar from 'tar-stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { extractTar, safeSegments, writeBatched } from '../../../src/cli/commands/get.ts'

interface TarEntry {
  name: string
  type?: 'file' | 'directory' | 'symlink'
  content?: string
  linkname?: string
}

async function * tarOf (entries: TarEntry[]): AsyncGenerator<Uint8Array> {
  const pack = tar.pack()
  for (const e of entries) {
    if (e.type === 'directory') pack.entry({ name: e.name, type: 'directory' })
    else if (e.type === 'symlink') pack.entry({ name: e.name, type: 'symlink', linkname: e.linkname ?? '' })
    else pack.entry({ name: e.name }, e.content ?? '')
  }
  pack.finalize()
  yield * (pack as AsyncIterable<Uint8Array>)
}

describe('get: tar extraction', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'pinbox-cli-get-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('writes a directory tree under the output path, the top entry renamed to it', async () => {
    const out = join(dir, 'photos')
    const stats = await extractTar(tarOf([
      { name: 'bafyROOT', type: 'directory' },
      { name: 'bafyROOT/a.txt', content: 'A' },
      { name: 'bafyROOT/sub', type: 'directory' },
      { name: 'bafyROOT/sub/b.txt', content: 'BB' },
      { name: 'bafyROOT/sub/link', type: 'symlink', linkname: '../a.txt' }
    ]), out)
    expect(stats).toEqual({ files: 2, directories: 2, bytes: 3 })
    expect(await readFile(join(out, 'a.txt'), 'utf8')).toBe('A')
    expect(await readFile(join(out, 'sub', 'b.txt'), 'utf8')).toBe('BB')
    expect(await readlink(join(out, 'sub', 'link'))).toBe('../a.txt')
    expect((await readdir(dir)).sort()).toEqual(['photos'])
  })

  it('writes a single file to the output path', async () => {
    const out = join(dir, 'note.txt')
    await extractTar(tarOf([{ name: 'bafkFILE', content: 'hello' }]), out)
    expect(await readFile(out, 'utf8')).toBe('hello')
  })

  it.each([
    ['bafyROOT/../../evil.txt'],
    ['/etc/evil.txt'],
    ['bafyROOT/sub/../../../evil.txt']
  ])('refuses the entry %s', async (name) => {
    const out = join(dir, 'out')
    await expect(extractTar(tarOf([
      { name: 'bafyROOT', type: 'directory' },
      { name, content: 'x' }
    ]), out)).rejects.toMatchObject({ code: 'ERR_UNSAFE_PATH' })
    expect((await readdir(dir)).filter((n) => n.includes('evil'))).toEqual([])
  })

  it('refuses to write through a symlink planted by an earlier entry', async () => {
    const out = join(dir, 'out')
    const outside = join(dir, 'outside')
    await expect(extractTar(tarOf([
      { name: 'bafyROOT', type: 'directory' },
      { name: 'bafyROOT/escape', type: 'symlink', linkname: outside },
      { name: 'bafyROOT/escape/pwned.txt', content: 'x' }
    ]), out)).rejects.toMatchObject({ code: 'ERR_UNSAFE_PATH' })
    await expect(lstat(join(outside, 'pwned.txt'))).rejects.toMatchObject({ code: 'ENOENT' })

    // Not even a folder is created through it when the symlink's target exists.
    await mkdir(outside)
    const out3 = join(dir, 'out3')
    await expect(extractTar(tarOf([
      { name: 'bafyROOT', type: 'directory' },
      { name: 'bafyROOT/escape', type: 'symlink', linkname: outside },
      { name: 'bafyROOT/escape/made', type: 'directory' },
      { name: 'bafyROOT/escape/made/pwned.txt', content: 'x' }
    ]), out3)).rejects.toMatchObject({ code: 'ERR_UNSAFE_PATH' })
    expect(await readdir(outside)).toEqual([])

    // A symlink in the place of a file is not followed either.
    const out2 = join(dir, 'out2')
    await expect(extractTar(tarOf([
      { name: 'bafyROOT', type: 'directory' },
      { name: 'bafyROOT/f', type: 'symlink', linkname: join(dir, 'target.txt') },
      { name: 'bafyROOT/f', content: 'x' }
    ]), out2)).rejects.toMatchObject({ code: 'ELOOP' })
    await expect(lstat(join(dir, 'target.txt'))).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('a single file: streamed to the output path with its mode, and nothing but zeros may follow it', async () => {
    const pack = tar.pack()
    pack.entry({ name: 'bafkMODE', mode: 0o600, mtime: new Date(1_000_000_000_000) }, 'secret')
    pack.finalize()
    const out = join(dir, 'mode.txt')
    expect(await extractTar(pack as AsyncIterable<Uint8Array>, out)).toEqual({ files: 1, directories: 0, bytes: 6 })
    expect(await readFile(out, 'utf8')).toBe('secret')
    const st = await lstat(out)
    expect(st.mode & 0o777).toBe(0o600)
    expect(st.mtimeMs).toBe(1_000_000_000_000)

    // a second entry after the file, or bytes cut off inside it, is an error, not a silent success
    await expect(extractTar(tarOf([{ name: 'bafkONE', content: 'one' }, { name: 'bafkTWO', content: 'two' }]), join(dir, 'two'))).rejects.toThrow(/more than one top entry/)
    async function * cut (): AsyncGenerator<Uint8Array> {
      let sent = 0
      for await (const chunk of tarOf([{ name: 'bafkCUT', content: 'x'.repeat(2000) }])) {
        const piece = chunk.subarray(0, Math.max(0, 1000 - sent))
        sent += piece.byteLength
        if (piece.byteLength > 0) yield piece
      }
    }
    await expect(extractTar(cut(), join(dir, 'cut'))).rejects.toThrow(/ended inside bafkCUT \(488 of 2000 bytes\)/)
  })

  it('a single file with a long (pax) name still extracts through the general path', async () => {
    const name = 'bafk' + 'x'.repeat(150)
    const out = join(dir, 'long.txt')
    expect(await extractTar(tarOf([{ name, content: 'long name' }]), out)).toEqual({ files: 1, directories: 0, bytes: 9 })
    expect(await readFile(out, 'utf8')).toBe('long name')
  })

  it('splits names safely', () => {
    expect(safeSegments('a/./b//c')).toEqual(['a', 'b', 'c'])
    expect(() => safeSegments('C:/x')).toThrow(/absolute/)
    expect(() => safeSegments('a/..')).toThrow(/\.\./)
  })
})

describe('get: batched file writes', () => {
  const pattern = (length: number, seed: number): Buffer => {
    const out = Buffer.alloc(length)
    for (let i = 0; i < length; i++) out[i] = (i * 31 + seed) & 0xff
    return out
  }

  it('extracts a multi-MiB file sent in small chunks byte for byte, in ~1 MiB writes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pinbox-cli-get-'))
    try {
      const data = pattern(5 * 1024 * 1024 + 123, 7)
      const pack = tar.pack()
      pack.entry({ name: 'bafkBIG', size: data.length }, data)
      pack.finalize()
      // re-chunk the archive into 60 KiB pieces, as a socket would hand them over
      async function * pieces (): AsyncGenerator<Uint8Array> {
        for await (const chunk of pack as AsyncIterable<Buffer>) {
          for (let i = 0; i < chunk.length; i += 60 * 1024) yield chunk.subarray(i, i + 60 * 1024)
        }
      }
      const out = join(dir, 'big.bin')
      expect(await extractTar(pieces(), out)).toEqual({ files: 1, directories: 0, bytes: data.length })
      expect((await readFile(out)).equals(data)).toBe(true)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('gathers chunks into few writev calls, finishes short writes and reports write errors', async () => {
    const written: Buffer[] = []
    let writevCalls = 0
    const fh = {
      writev: async (chunks: Uint8Array[]) => {
        writevCalls++
        // a short write: only half of every batch goes down
        const all = Buffer.concat(chunks)
        const half = Math.floor(all.length / 2)
        written.push(all.subarray(0, half))
        return { bytesWritten: half, buffers: chunks }
      },
      write: async (chunk: Uint8Array) => {
        written.push(Buffer.from(chunk))
        return { bytesWritten: chunk.byteLength, buffer: chunk }
      }
    }
    const data = pattern(3 * 1024 * 1024, 9)
    async function * source (): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < data.length; i += 64 * 1024) yield data.subarray(i, i + 64 * 1024)
    }
    expect(await writeBatched(fh as never, source())).toBe(data.length)
    expect(Buffer.concat(written).equals(data)).toBe(true)
    expect(writevCalls).toBe(3)

    const failing = { writev: async () => { throw Object.assign(new Error('disk full'), { code: 'ENOSPC' }) }, write: fh.write }
    await expect(writeBatched(failing as never, source())).rejects.toMatchObject({ code: 'ENOSPC' })
  })
})
