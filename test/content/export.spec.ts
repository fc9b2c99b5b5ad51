import { createReadStream } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { extract } from 'tar-stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { importCar } from '../../src/content/car.ts'
import { cat, get, ls, parseContentPath, tarStream, writeToFileSystem } from '../../src/content/export.ts'
import { importContent } from '../../src/content/import.ts'
import { resolveImportOptions } from '../../src/content/profiles.ts'
import { bytesOf, collect, drain, expectCode, FIXTURES, pseudoRandom, tempStore } from './helpers.ts'
import type { TempStore } from './helpers.ts'
import type { CID } from 'multiformats/cid'

const text = (b: Uint8Array): string => new TextDecoder().decode(b)

describe('export', () => {
  let t: TempStore
  let data: Uint8Array
  let file: CID
  let dir: CID

  beforeEach(async () => {
    t = await tempStore()
    data = pseudoRandom(10_000, 5)
    // 1000-byte chunks and 3 links per node: a three-level tree, so ranges cross leaves and subtrees
    const options = { ...resolveImportOptions('unixfs-v1-2025', { chunker: 'size-1000' }), maxChildrenPerNode: 3 }
    for await (const e of importContent(t.store, [{ content: bytesOf(data) }], options)) file = e.cid
    const car = await importCar(t.store, createReadStream(join(FIXTURES, 'path_gateway_unixfs/dir-with-files.car')))
    dir = car.roots[0]!
  })
  afterEach(async () => { await t.cleanup() })

  it('cats whole files and byte ranges', async () => {
    expect(await collect(cat(t.store, file))).toEqual(data)
    for (const [offset, length] of [[0, 10], [995, 10], [2500, 5000], [9990, undefined], [0, 10_000], [3000, 0]] as const) {
      const got = await collect(cat(t.store, file, { offset, ...(length == null ? {} : { length }) }))
      expect(got, `${offset}+${length}`).toEqual(data.subarray(offset, length == null ? undefined : offset + length))
    }
    expect(text(await collect(cat(t.store, `/ipfs/${dir}/hello.txt`)))).toBe('hello world\n')
    expect(text(await collect(cat(t.store, `${dir}/hello.txt`)))).toBe('hello world\n')
  })

  it('gives typed errors for bad CIDs, missing segments, directories and missing blocks', async () => {
    await expectCode(drain(cat(t.store, 'notacid/x')), 'ERR_INVALID_CID')
    await expectCode(drain(cat(t.store, '/ipfs/')), 'ERR_INVALID_CID')
    const err = await expectCode(drain(cat(t.store, `/ipfs/${dir}/nope.txt`)), 'ERR_PATH_NOT_FOUND')
    expect(err.message).toContain('nope.txt')
    await expectCode(drain(cat(t.store, `${dir}/hello.txt/deeper`)), 'ERR_PATH_NOT_FOUND')
    await expectCode(drain(cat(t.store, dir)), 'ERR_NOT_A_FILE')
    // drop one leaf of the file: reading across it names the block
    const leaves: CID[] = []
    for await (const e of ls(t.store, `${dir}`)) if (e.name === 'multiblock.txt') leaves.push(e.cid)
    const blocksBefore = t.store.stat().blocks
    const { walkDag } = await import('../../src/content/dag-walk.ts')
    const fileBlocks = []
    for await (const b of walkDag(t.store, leaves[0]!)) fileBlocks.push(b.cid)
    const victim = fileBlocks.at(-1)!
    await t.store.delete(victim)
    expect(t.store.stat().blocks).toBe(blocksBefore - 1)
    const missing: any = await expectCode(drain(cat(t.store, `${dir}/multiblock.txt`)), 'ERR_BLOCK_MISSING')
    expect(missing.cid.equals(victim)).toBe(true)
  })

  it('parses every path form', () => {
    expect(parseContentPath(`/ipfs/${dir}/a/b/`).segments).toEqual(['a', 'b'])
    expect(parseContentPath(`${dir}`).cid.equals(dir)).toBe(true)
    expect(parseContentPath(dir).segments).toEqual([])
  })

  it('lists a directory with names, CIDs, sizes and types; a file lists as itself', async () => {
    const entries = []
    for await (const e of ls(t.store, `/ipfs/${dir}`)) entries.push(e)
    expect(entries.map(e => [e.name, e.type, e.size])).toEqual([
      ['ascii-copy.txt', 'file', 31n],
      ['ascii.txt', 'file', 31n],
      ['hello.txt', 'file', 12n],
      ['multiblock.txt', 'file', 1026n]
    ])
    expect(entries[2]!.path).toBe(`${dir}/hello.txt`)
    const self = []
    for await (const e of ls(t.store, file)) self.push(e)
    expect(self.map(e => [e.type, e.size])).toEqual([['file', 10_000n]])
  })

  it('gets a tree depth-first and streams it as a tar that extracts to the same content', async () => {
    const entries = []
    for await (const e of get(t.store, dir)) entries.push({ path: e.path, type: e.type, size: e.size })
    expect(entries.map(e => e.path)).toEqual([`${dir}`, ...['ascii-copy.txt', 'ascii.txt', 'hello.txt', 'multiblock.txt'].map(n => `${dir}/${n}`)])

    const files = new Map<string, string>()
    const types = new Map<string, string>()
    const ex = extract()
    const done = new Promise<void>((resolve, reject) => {
      ex.on('entry', (header, stream, next) => {
        types.set(header.name, header.type ?? '')
        const parts: Buffer[] = []
        stream.on('data', (c: unknown) => parts.push(c as Buffer))
        stream.on('end', () => { files.set(header.name, Buffer.concat(parts).toString()); next() })
      })
      ex.on('finish', resolve)
      ex.on('error', reject)
    })
    Readable.from(tarStream(get(t.store, dir))).pipe(ex)
    await done
    expect(types.get(`${dir}`)).toBe('directory')
    expect(files.get(`${dir}/hello.txt`)).toBe('hello world\n')
    expect(files.get(`${dir}/multiblock.txt`)).toBe(text(await collect(cat(t.store, `${dir}/multiblock.txt`))))
    // a subpath is named by its last segment
    const sub = []
    for await (const e of get(t.store, `${dir}/hello.txt`)) sub.push(e.path)
    expect(sub).toEqual(['hello.txt'])
  })

  it('refuses DAG link names that climb out of the root', async () => {
    for (const name of ['outside-root.car', 'inside-root.car']) {
      const { roots } = await importCar(t.store, createReadStream(join(FIXTURES, 'path_gateway_tar', name)))
      await expectCode(drain(get(t.store, roots[0]!)), 'ERR_UNSAFE_PATH')
      await expectCode(drain(tarStream(get(t.store, roots[0]!))), 'ERR_UNSAFE_PATH')
    }
  })

  it('writes to disk without overwriting what is there', async () => {
    const out = await mkdtemp(join(tmpdir(), 'pinbox-get-'))
    try {
      await writeToFileSystem(get(t.store, dir), join(out, 'copy'))
      expect(text(await collect(createReadStream(join(out, 'copy', 'hello.txt'))))).toBe('hello world\n')
      await writeFile(join(out, 'single'), 'keep me')
      await expect(writeToFileSystem(get(t.store, `${dir}/hello.txt`), join(out, 'single'))).rejects.toMatchObject({ code: 'EEXIST' })
      expect(text(await collect(createReadStream(join(out, 'single'))))).toBe('keep me')
    } finally {
      await rm(out, { recursive: true, force: true })
    }
  })
})
