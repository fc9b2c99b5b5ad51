import { createReadStream } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { importCar } from '../../src/content/car.ts'
import { walkDag } from '../../src/content/dag-walk.ts'
import { cat, get, ls, writeToFileSystem } from '../../src/content/export.ts'
import { fileSystemCandidates, importContent } from '../../src/content/import.ts'
import { resolveImportOptions } from '../../src/content/profiles.ts'
import { bytesOf, collect, expectCode, FIXTURES, pseudoRandom, tempStore } from './helpers.ts'
import type { ImportedEntry } from '../../src/content/types.ts'
import type { TempStore } from './helpers.ts'

const enc = new TextEncoder()

async function all (source: AsyncIterable<ImportedEntry>): Promise<ImportedEntry[]> {
  const out: ImportedEntry[] = []
  for await (const e of source) out.push(e)
  return out
}

describe('importContent', () => {
  let t: TempStore
  beforeEach(async () => { t = await tempStore() })
  afterEach(async () => { await t.cleanup() })

  it('matches Kubo for "hello world\\n" with the kubo-v0 profile, Size included', async () => {
    const [entry] = await all(importContent(t.store, [{ content: bytesOf(enc.encode('hello world\n')) }], resolveImportOptions('kubo-v0')))
    expect(entry?.cid.toString()).toBe('QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o')
    // Kubo's `ipfs add` reports Size 20 for this one-block file
    expect(entry?.size).toBe(20n)
    expect(await collect(cat(t.store, entry!.cid))).toEqual(enc.encode('hello world\n'))
  })

  it('matches Kubo for multiblock.txt re-added with --cid-version 1 --chunker size-256', async () => {
    const car = await importCar(t.store, createReadStream(join(FIXTURES, 'path_gateway_unixfs/dir-with-files.car')))
    const bytes = await collect(cat(t.store, `/ipfs/${car.roots[0]}/multiblock.txt`))
    expect(bytes.length).toBeGreaterThan(256)
    for (const profile of ['kubo-v0', 'unixfs-v1-2025']) {
      const entries = await all(importContent(t.store, [{ content: bytesOf(bytes) }], resolveImportOptions(profile, { cidVersion: 1, chunker: 'size-256' })))
      expect(entries.at(-1)?.cid.toString(), profile).toBe('bafybeigcisqd7m5nf3qmuvjdbakl5bdnh4ocrmacaqkpuh77qjvggmt2sa')
    }
  })

  it('gives a store that keeps the bytes it is handed (in memory) its own copy of every leaf; only releaseChunks reuses leaf buffers', async () => {
    const leafBytes = 64 * 1024
    const data = pseudoRandom(30 * leafBytes + 333, 12)
    const options = resolveImportOptions('unixfs-v1-2025', { chunker: `size-${leafBytes}` })
    // a leaf at a time with a pause: earlier leaves are hashed and stored before later ones are cut
    const slowly = async function * (): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < data.byteLength; i += leafBytes) {
        await new Promise(resolve => setTimeout(resolve, 2))
        yield data.slice(i, i + leafBytes)
      }
    }
    const kept = new Map<string, Uint8Array>()
    const memory = { put: async (cid: any, bytes: any) => { kept.set(cid.toString(), bytes); return cid } }
    const [entry] = await all(importContent(memory, [{ content: slowly() }], options))
    const leaves = [...kept.entries()].filter(([cid]) => cid.startsWith('bafk'))
    expect(leaves).toHaveLength(31)
    // every leaf still holds its own bytes after the import: none was a buffer reused for a later one
    for (const [cid, bytes] of leaves) {
      expect((await sha256.digest(bytes)).digest, cid).toEqual(CID.parse(cid).multihash.digest)
    }
    expect(entry?.cid.toString()).toBe((await all(importContent(t.store, [{ content: bytesOf(data) }], options)))[0]?.cid.toString())
  })

  it('keeps leaves right while writes overlap reading: pieces across leaves, an empty file, CIDv0 leaves', async () => {
    const data = pseudoRandom(5 * 256 * 1024 + 333, 11)
    const pieces = (step: number): Uint8Array[] => {
      const out: Uint8Array[] = []
      for (let i = 0; i < data.byteLength; i += step) out.push(data.subarray(i, i + step))
      return out
    }
    const options = resolveImportOptions('unixfs-v1-2025', { chunker: 'size-262144' })
    // one piece larger than a leaf, then small ones: the same file, the same CID
    const [whole] = await all(importContent(t.store, [{ content: bytesOf(data) }], options))
    const [small] = await all(importContent(t.store, [{ content: bytesOf(...pieces(10_007)) }], options))
    expect(small?.cid.toString()).toBe(whole?.cid.toString())
    expect(await collect(cat(t.store, whole!.cid))).toEqual(data)
    const v0 = resolveImportOptions('kubo-v0')
    const [a] = await all(importContent(t.store, [{ content: bytesOf(data) }], v0))
    const [b] = await all(importContent(t.store, [{ content: bytesOf(...pieces(65_536)) }], v0))
    expect(b?.cid.toString()).toBe(a?.cid.toString())
    expect(await collect(cat(t.store, b!.cid))).toEqual(data)
    const [empty] = await all(importContent(t.store, [{ content: bytesOf() }], options))
    expect(empty?.cid.toString()).toBe('bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku')
  })

  it('releaseChunks frees a chunk that is its buffer\'s only view once its leaves are written, and no other', async () => {
    const data = pseudoRandom(3 * 256 * 1024 + 5, 12)
    const owned: Uint8Array[] = []
    for (let i = 0; i < data.byteLength; i += 100_000) owned.push(data.slice(i, i + 100_000))
    // views into one shared buffer are someone else's: never freed
    const shared = data.slice()
    const views = [shared.subarray(0, 400_000), shared.subarray(400_000)]
    const options = { ...resolveImportOptions('unixfs-v1-2025', { chunker: 'size-262144' }), releaseChunks: true }
    const [first] = await all(importContent(t.store, [{ content: bytesOf(...owned) }], options))
    expect(owned.every(chunk => chunk.byteLength === 0)).toBe(true)
    const [second] = await all(importContent(t.store, [{ content: bytesOf(...views) }], options))
    expect(second?.cid.toString()).toBe(first?.cid.toString())
    expect(shared).toEqual(data)
    expect(await collect(cat(t.store, first!.cid))).toEqual(data)
  })

  it('defaults to CIDv1 raw leaves of 1 MiB: a 3 MiB file is a root over 3 raw leaves', async () => {
    const data = pseudoRandom(3 * 1024 * 1024, 7)
    // feed odd-sized pieces so the chunker, not the source, decides the leaf boundaries
    const pieces = [data.subarray(0, 1000), data.subarray(1000, 2_000_000), data.subarray(2_000_000)]
    const [entry] = await all(importContent(t.store, [{ content: bytesOf(...pieces) }], resolveImportOptions()))
    expect(entry?.cid.version).toBe(1)
    expect(entry?.cid.code).toBe(dagPb.code)
    const blocks = []
    for await (const b of walkDag(t.store, entry!.cid)) blocks.push(b)
    expect(blocks).toHaveLength(4)
    const leaves = blocks.slice(1)
    expect(leaves.map(b => b.cid.code)).toEqual([raw.code, raw.code, raw.code])
    expect(leaves.map(b => b.bytes.length)).toEqual([1048576, 1048576, 1048576])
    const rootBytes = blocks[0]!.bytes
    // Size = root block + the leaves' Tsizes
    expect(entry?.size).toBe(BigInt(rootBytes.length + 3 * 1048576))
    expect(await collect(cat(t.store, entry!.cid))).toEqual(data)
  })

  it('wraps a file in a directory that keeps its name', async () => {
    const entries = await all(importContent(t.store, [{ path: 'hello.txt', content: bytesOf(enc.encode('hi\n')) }], resolveImportOptions('unixfs-v1-2025', { wrapWithDirectory: true })))
    expect(entries).toHaveLength(2)
    const root = entries.at(-1)!
    const listing = []
    for await (const e of ls(t.store, root.cid)) listing.push(e)
    expect(listing.map(e => [e.name, e.type, e.size])).toEqual([['hello.txt', 'file', 3n]])
    expect(listing[0]?.cid.equals(entries[0]!.cid)).toBe(true)
  })

  it('onlyHash writes nothing yet yields the same CIDs', async () => {
    const data = pseudoRandom(2_500_000, 3)
    const [hashed] = await all(importContent(t.store, [{ content: bytesOf(data) }], resolveImportOptions('unixfs-v1-2025', { onlyHash: true })))
    expect(t.store.stat().blocks).toBe(0)
    const [stored] = await all(importContent(t.store, [{ content: bytesOf(data) }], resolveImportOptions()))
    expect(hashed?.cid.equals(stored!.cid)).toBe(true)
    expect(t.store.stat().blocks).toBe(4)
  })

  it('reports bytes read as progress', async () => {
    const seen: number[] = []
    const options = { ...resolveImportOptions(), onProgress: (n: number) => seen.push(n) }
    await all(importContent(t.store, [{ content: bytesOf(new Uint8Array(10), new Uint8Array(5)) }], options))
    expect(seen).toEqual([10, 15])
  })

  it('turns a large directory into a HAMT shard, a small one stays flat', async () => {
    const many = Array.from({ length: 3000 }, (_, i) => ({ path: `big/${'n'.repeat(60)}-${String(i).padStart(5, '0')}`, content: bytesOf(enc.encode(String(i))) }))
    const big = (await all(importContent(t.store, many, resolveImportOptions()))).at(-1)!
    expect(big.path).toBe('big')
    const few = many.slice(0, 50).map(c => ({ ...c, path: c.path.replace('big/', 'small/') }))
    const small = (await all(importContent(t.store, few, resolveImportOptions()))).at(-1)!
    const typeOf = async (cid: typeof big.cid): Promise<string> => {
      const node = dagPb.decode(await collect(t.store.get(cid)))
      return UnixFS.unmarshal(node.Data!).type
    }
    expect(await typeOf(big.cid)).toBe('hamt-sharded-directory')
    expect(await typeOf(small.cid)).toBe('directory')
    let count = 0
    for await (const e of ls(t.store, big.cid)) {
      count++
      expect(e.type).toBe('file')
    }
    expect(count).toBe(3000)
    expect(new TextDecoder().decode(await collect(cat(t.store, `${big.cid}/${'n'.repeat(60)}-02999`)))).toBe('2999')
  })
})

describe('fileSystemCandidates', () => {
  let t: TempStore
  let src: string
  beforeEach(async () => {
    t = await tempStore()
    src = await mkdtemp(join(tmpdir(), 'pinbox-src-'))
  })
  afterEach(async () => {
    await t.cleanup()
    await rm(src, { recursive: true, force: true })
  })

  async function tree (root: string): Promise<Record<string, string>> {
    const out: Record<string, string> = {}
    const visit = async (dir: string, rel: string): Promise<void> => {
      for (const d of await readdir(dir, { withFileTypes: true })) {
        const p = join(dir, d.name)
        const r = rel === '' ? d.name : `${rel}/${d.name}`
        if (d.isDirectory()) {
          out[r] = 'dir'
          await visit(p, r)
        } else if (d.isSymbolicLink()) {
          out[r] = 'link'
        } else {
          out[r] = Buffer.from(await readFile(p)).toString('base64')
        }
      }
    }
    await visit(root, '')
    return out
  }

  it('imports a tree with names and gets it back to disk identical', async () => {
    const root = join(src, 'site')
    await mkdir(join(root, 'a/b'), { recursive: true })
    await mkdir(join(root, 'empty'))
    await writeFile(join(root, 'index.html'), '<h1>hi</h1>')
    await writeFile(join(root, 'zero'), '')
    await writeFile(join(root, 'a/b/big.bin'), pseudoRandom(1_500_000, 9))
    await writeFile(join(root, 'a/one'), 'x')
    await writeFile(join(root, '.hidden'), 'secret')
    await symlink('index.html', join(root, 'link'))

    const entries = await all(importContent(t.store, fileSystemCandidates(root, { recursive: true }), resolveImportOptions()))
    const top = entries.at(-1)!
    expect(top.path).toBe('site')
    expect(entries.map(e => e.path)).toContain('site/a/b/big.bin')
    expect(entries.map(e => e.path)).not.toContain('site/.hidden')

    const out = join(src, 'out')
    await writeToFileSystem(get(t.store, top.cid), out)
    const expected = await tree(root)
    delete expected['.hidden']
    expect(await tree(out)).toEqual(expected)

    const withHidden = await all(importContent(t.store, fileSystemCandidates(root, { recursive: true, hidden: true }), resolveImportOptions()))
    expect(withHidden.map(e => e.path)).toContain('site/.hidden')
    expect(withHidden.at(-1)!.cid.equals(top.cid)).toBe(false)
  })

  it('imports a lone file under its own name', async () => {
    await writeFile(join(src, 'f.txt'), 'hello world\n')
    const [entry] = await all(importContent(t.store, fileSystemCandidates(join(src, 'f.txt')), resolveImportOptions('kubo-v0')))
    expect(entry).toMatchObject({ path: 'f.txt' })
    expect(entry?.cid.toString()).toBe('QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o')
  })

  it('refuses a directory without recursive, and a missing path by name', async () => {
    await expectCode(all(importContent(t.store, fileSystemCandidates(src), resolveImportOptions())), 'ERR_IS_DIRECTORY')
    const missing = join(src, 'nope')
    const err = await expectCode(all(importContent(t.store, fileSystemCandidates(missing), resolveImportOptions())), 'ERR_NOT_FOUND')
    expect(err.message).toContain(missing)
    expect((await stat(src)).isDirectory()).toBe(true)
  })
})
