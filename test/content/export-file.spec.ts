import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { exporter } from 'ipfs-unixfs-exporter'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { cat, get, tarStream } from '../../src/content/export.ts'
import { importContent } from '../../src/content/import.ts'
import { resolveImportOptions } from '../../src/content/profiles.ts'
import { walkDag } from '../../src/content/dag-walk.ts'
import { bytesOf, collect, drain, expectCode, pseudoRandom, tempStore } from './helpers.ts'
import type { TempStore } from './helpers.ts'
import type { ImportOptions } from '../../src/content/types.ts'
import type { Blockstore } from 'interface-blockstore'

/** The exporter's own reading of a range: the oracle the fast path must match byte for byte. */
async function exporterBytes (store: Pick<Blockstore, 'get'>, cid: CID, offset?: number, length?: number): Promise<Uint8Array> {
  const entry = await exporter(cid, store)
  if (entry.type !== 'file' && entry.type !== 'raw') throw new Error(`not a file: ${entry.type}`)
  return collect(entry.content({ ...(offset == null ? {} : { offset }), ...(length == null ? {} : { length }) }))
}

async function add (t: TempStore, data: Uint8Array, options: ImportOptions): Promise<CID> {
  let cid: CID | undefined
  for await (const e of importContent(t.store, [{ content: bytesOf(data) }], options)) cid = e.cid
  return cid!
}

async function putBlock (t: TempStore, code: number, bytes: Uint8Array): Promise<CID> {
  const cid = CID.createV1(code, await sha256.digest(bytes))
  await t.store.put(cid, bytes)
  return cid
}

/** Offsets and lengths on, just before and just after leaf edges, plus the exporter's odd cases. */
function ranges (size: number, leaf: number): Array<[number | undefined, number | undefined]> {
  const out: Array<[number | undefined, number | undefined]> = [[undefined, undefined], [0, size], [7, size], [size, undefined], [size, 0], [0, 0]]
  for (const edge of [0, leaf - 1, leaf, leaf + 1, 2 * leaf - 1, 3 * leaf + 5, size - leaf, size - 1]) {
    if (edge < 0 || edge > size) continue
    for (const length of [undefined, 1, 2, leaf, leaf + 2, 3 * leaf + 1, size]) out.push([edge, length])
  }
  return out
}

describe('cat of a UnixFS file (the store-direct path)', () => {
  let t: TempStore
  beforeEach(async () => { t = await tempStore() })
  afterEach(async () => { await t.cleanup() })

  it('matches the exporter for ranges across leaf and subtree edges (raw leaves, three levels)', async () => {
    const data = pseudoRandom(20_000, 11)
    const file = await add(t, data, { ...resolveImportOptions('unixfs-v1-2025', { chunker: 'size-1000' }), maxChildrenPerNode: 3 })
    for (const [offset, length] of ranges(data.length, 1000)) {
      const opts = { ...(offset == null ? {} : { offset }), ...(length == null ? {} : { length }) }
      const got = await collect(cat(t.store, file, opts))
      expect(got, `${offset}+${length}`).toEqual(await exporterBytes(t.store, file, offset, length))
      const from = offset ?? 0
      expect(got, `${offset}+${length}`).toEqual(data.subarray(from, length == null || length === data.length ? undefined : from + length))
    }
    await expectCode(drain(cat(t.store, file, { offset: data.length + 1 })), 'ERR_INVALID_PARAMS')
    await expectCode(drain(cat(t.store, file, { offset: -1 })), 'ERR_INVALID_PARAMS')
  })

  it('reads a kubo-v0 file (CIDv0, dag-pb leaves): each leaf\'s Data, ranges included', async () => {
    const data = pseudoRandom(9_000, 12)
    const file = await add(t, data, { ...resolveImportOptions('kubo-v0', { chunker: 'size-1000' }), maxChildrenPerNode: 4 })
    expect(file.version).toBe(0)
    const leafCodes = new Set<number>()
    for await (const b of walkDag(t.store, file)) if (!b.cid.equals(file)) leafCodes.add(b.cid.code)
    expect([...leafCodes]).toEqual([dagPb.code])
    expect(await collect(cat(t.store, file))).toEqual(data)
    for (const [offset, length] of ranges(data.length, 1000)) {
      const opts = { ...(offset == null ? {} : { offset }), ...(length == null ? {} : { length }) }
      expect(await collect(cat(t.store, file, opts)), `${offset}+${length}`).toEqual(await exporterBytes(t.store, file, offset, length))
    }
  })

  it('reads a single raw block and a single-node dag-pb file', async () => {
    const data = pseudoRandom(3000, 13)
    const rawCid = await putBlock(t, raw.code, data)
    expect(await collect(cat(t.store, rawCid))).toEqual(data)
    expect(await collect(cat(t.store, rawCid, { offset: 100, length: 50 }))).toEqual(data.subarray(100, 150))
    const single = await add(t, data, resolveImportOptions('kubo-v0'))
    expect((await walkDag(t.store, single).next()).value?.cid.equals(single)).toBe(true)
    expect(await collect(cat(t.store, single))).toEqual(data)
    expect(await collect(cat(t.store, single, { offset: 2999 }))).toEqual(data.subarray(2999))
  })

  it('reads data held by an inner node before its children', async () => {
    const own = pseudoRandom(50, 14)
    const a = pseudoRandom(70, 15)
    const b = pseudoRandom(30, 16)
    const unixfs = new UnixFS({ type: 'file', data: own })
    unixfs.addBlockSize(BigInt(a.length))
    unixfs.addBlockSize(BigInt(b.length))
    const links = [{ Hash: await putBlock(t, raw.code, a), Tsize: a.length }, { Hash: await putBlock(t, raw.code, b), Tsize: b.length }]
    const root = await putBlock(t, dagPb.code, dagPb.encode({ Data: unixfs.marshal(), Links: links }))
    const all = new Uint8Array([...own, ...a, ...b])
    expect(await collect(cat(t.store, root))).toEqual(all)
    expect(await collect(cat(t.store, root))).toEqual(await exporterBytes(t.store, root))
    // not checked against the exporter: it advances past an inner node's data by the part it kept
    for (const [offset, length] of [[0, 10], [45, 10], [50, 70], [119, 2], [60, 100], [140, undefined]] as const) {
      const opts = { offset, ...(length == null ? {} : { length }) }
      expect(await collect(cat(t.store, root, opts)), `${offset}+${length}`).toEqual(all.subarray(offset, length == null ? undefined : offset + length))
    }
  })

  it('yields raw leaves as the store returned them, reading a bounded few ahead', async () => {
    const data = pseudoRandom(40_000, 17)
    const file = await add(t, data, resolveImportOptions('unixfs-v1-2025', { chunker: 'size-1000' }))
    const returned = new Set<Uint8Array>()
    let inFlight = 0
    let maxInFlight = 0
    const store: Pick<Blockstore, 'get'> = {
      get: async function * (cid, options) {
        inFlight++
        maxInFlight = Math.max(maxInFlight, inFlight)
        try {
          await new Promise(resolve => setTimeout(resolve, 1))
          for await (const chunk of t.store.get(cid, options)) {
            returned.add(chunk)
            yield chunk
          }
        } finally {
          inFlight--
        }
      }
    }
    let chunks = 0
    for await (const chunk of cat(store, file, { readAhead: 4 })) {
      // no copy: every whole leaf is the very array the store handed out
      expect(returned.has(chunk)).toBe(true)
      chunks++
      await new Promise(resolve => setTimeout(resolve, 2))
    }
    expect(chunks).toBe(40)
    expect(maxInFlight).toBeGreaterThan(1)
    expect(maxInFlight).toBeLessThanOrEqual(5)
    // get's file content takes the same path
    const entries = []
    for await (const entry of get(store, file)) entries.push(entry)
    expect(await collect(entries[0]!.content!())).toEqual(data)
    // and the tar of `get` passes those same arrays through: piped, never gathered into a copy
    returned.clear()
    let passedThrough = 0
    let tarBytes = 0
    for await (const chunk of tarStream(get(store, file))) {
      if (returned.has(chunk)) passedThrough++
      tarBytes += chunk.byteLength
    }
    expect(passedThrough).toBe(40)
    expect(tarBytes).toBe(512 + 40_000 + (512 - 40_000 % 512) + 1024)
  })

  it('names a missing leaf with ERR_BLOCK_MISSING, and reads ranges that do not need it', async () => {
    const data = pseudoRandom(10_000, 18)
    const file = await add(t, data, resolveImportOptions('unixfs-v1-2025', { chunker: 'size-1000' }))
    const blocks = []
    for await (const b of walkDag(t.store, file)) blocks.push(b.cid)
    const victim = blocks.at(-1)!
    await t.store.delete(victim)
    // read-ahead must not reach past the range: the first leaves alone still read
    expect(await collect(cat(t.store, file, { length: 2000 }))).toEqual(data.subarray(0, 2000))
    const err: any = await expectCode(drain(cat(t.store, file)), 'ERR_BLOCK_MISSING')
    expect(err.cid.equals(victim)).toBe(true)
    await expectCode(drain(cat(t.store, file, { offset: 9_500 })), 'ERR_BLOCK_MISSING')
  })

  it('stops when its signal aborts', async () => {
    const data = pseudoRandom(10_000, 19)
    const file = await add(t, data, resolveImportOptions('unixfs-v1-2025', { chunker: 'size-1000' }))
    const controller = new AbortController()
    let seen = 0
    await expect((async () => {
      for await (const chunk of cat(t.store, file, { signal: controller.signal })) {
        seen += chunk.byteLength
        controller.abort()
      }
    })()).rejects.toMatchObject({ name: 'AbortError' })
    expect(seen).toBe(1000)
  })
})
