import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import fs from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import all from 'it-all'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { createBlockstore, multihashKey } from '../../src/store/blockstore.ts'
import { createBufferPool } from '../../src/store/buffer-pool.ts'
import { itOnTmpfs } from '../helpers/tmpfs.ts'
import type { FlatBlockstore } from '../../src/store/blockstore.ts'

const run = promisify(execFile)
const here = dirname(fileURLToPath(import.meta.url))

async function block (text: string | Uint8Array): Promise<{ cid: CID, bytes: Uint8Array }> {
  const bytes = typeof text === 'string' ? new TextEncoder().encode(text) : text
  return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes }
}

async function bytesOf (store: FlatBlockstore, cid: CID): Promise<Uint8Array> {
  return Buffer.concat(await all(store.get(cid)))
}

function fileOf (dir: string, cid: CID): string {
  const key = multihashKey(cid)
  return join(dir, key.slice(-3, -1), `${key}.data`)
}

describe('flat-file blockstore', () => {
  let tmp: string
  let dir: string
  let store: FlatBlockstore

  beforeEach(async () => {
    tmp = await fs.mkdtemp(join(tmpdir(), 'pinbox-bs-'))
    dir = join(tmp, 'blocks')
    store = createBlockstore({ path: dir })
    await store.open()
  })

  afterEach(async () => {
    await store.close()
    await fs.rm(tmp, { recursive: true, force: true })
  })

  it('puts, gets, sizes, lists and deletes blocks in the flatfs layout', async () => {
    const a = await block('hello')
    const b = await block('world!')
    await store.put(a.cid, a.bytes)
    await store.put(b.cid, [b.bytes.subarray(0, 2), b.bytes.subarray(2)])
    expect(await store.has(a.cid)).toBe(true)
    expect(await bytesOf(store, a.cid)).toEqual(Buffer.from(a.bytes))
    expect(await bytesOf(store, b.cid)).toEqual(Buffer.from(b.bytes))
    expect(await store.size(b.cid)).toBe(6)
    expect(store.stat()).toEqual({ blocks: 2, bytes: 11 })
    // Kubo's flatfs: base32 multihash key, next-to-last/2 shard, .data suffix
    const key = multihashKey(a.cid)
    expect(key).toMatch(/^CIQ[A-Z2-7]+$/)
    expect(existsSync(join(dir, key.slice(-3, -1), `${key}.data`))).toBe(true)
    expect(await fs.readFile(join(dir, 'SHARDING'), 'utf8')).toBe('/repo/flatfs/shard/v1/next-to-last/2\n')

    const listed = (await all(store.cids())).map(c => c.toString()).sort()
    expect(listed).toEqual([a.cid.toString(), b.cid.toString()].sort())

    await store.delete(a.cid)
    expect(await store.has(a.cid)).toBe(false)
    expect(await store.size(a.cid)).toBeUndefined()
    expect(store.stat()).toEqual({ blocks: 1, bytes: 6 })
    await store.delete(a.cid)
    expect(store.stat()).toEqual({ blocks: 1, bytes: 6 })
  })

  it('putNew writes an absent block and says so; a present one (also as its CIDv0, or after a put) is left alone', async () => {
    const a = await block('first')
    expect(await store.putNew(a.cid, a.bytes)).toBe(true)
    expect(await bytesOf(store, a.cid)).toEqual(Buffer.from(a.bytes))
    expect(await store.putNew(a.cid, a.bytes)).toBe(false)
    expect(await store.putNew(CID.createV0(a.cid.multihash as Parameters<typeof CID.createV0>[0]), a.bytes)).toBe(false)
    const b = await block('second')
    await store.put(b.cid, b.bytes)
    expect(await store.putNew(b.cid, b.bytes)).toBe(false)
    expect(store.stat()).toEqual({ blocks: 2, bytes: 11 })
    // two at once for one block: the store's per-key queue lets exactly one of them write it
    const c = await block('raced')
    expect((await Promise.all([store.putNew(c.cid, c.bytes), store.putNew(c.cid, c.bytes)])).sort()).toEqual([false, true])
    expect(store.stat()).toEqual({ blocks: 3, bytes: 16 })
  })

  it('reads a block into a pooled buffer; a larger block gets its own; an absent one is NotFoundError', async () => {
    const pool = createBufferPool({ bufferBytes: 64 })
    const small = await block('pooled bytes')
    const large = await block(new Uint8Array(100).fill(7))
    await store.put(small.cid, small.bytes)
    await store.put(large.cid, large.bytes)
    const a = await store.getPooled(small.cid, pool)
    expect(Buffer.from(a).toString()).toBe('pooled bytes')
    expect(a.buffer.byteLength).toBe(64)
    pool.release(a)
    const again = await store.getPooled(small.cid, pool)
    expect(again.buffer).toBe(a.buffer)
    const b = await store.getPooled(large.cid, pool)
    expect(Buffer.from(b).equals(Buffer.from(large.bytes))).toBe(true)
    expect(b.buffer.byteLength).toBe(100)
    const absent = await block('never stored')
    await expect(store.getPooled(absent.cid, pool)).rejects.toMatchObject({ name: 'NotFoundError' })
  })

  it('throws NotFoundError for an absent block', async () => {
    const a = await block('absent')
    await expect(bytesOf(store, a.cid)).rejects.toHaveProperty('name', 'NotFoundError')
  })

  it('treats CIDv0 and CIDv1 of the same multihash as one block; cids() yields v1 raw', async () => {
    const a = await block('same bytes')
    const v0 = CID.createV0(a.cid.multihash as Parameters<typeof CID.createV0>[0])
    await store.put(v0, a.bytes)
    expect(await store.has(a.cid)).toBe(true)
    await store.put(a.cid, a.bytes)
    expect(store.stat()).toEqual({ blocks: 1, bytes: a.bytes.length })
    const [listed] = await all(store.cids())
    expect(listed?.version).toBe(1)
    expect(listed?.code).toBe(raw.code)
    expect(listed?.equals(a.cid)).toBe(true)
  })

  it('supports the many-variants', async () => {
    const blocks = await Promise.all(['1', '2', '3'].map(block))
    expect(await all(store.putMany(blocks))).toHaveLength(3)
    const got = await all(store.getMany(blocks.map(b => b.cid)))
    expect(got.map(p => Buffer.concat([...(p.bytes as Generator<Uint8Array>)]).toString())).toEqual(['1', '2', '3'])
    expect(await all(store.getAll())).toHaveLength(3)
    await all(store.deleteMany(blocks.map(b => b.cid)))
    expect(store.stat()).toEqual({ blocks: 0, bytes: 0 })
  })

  it('writes a block given as parts (an importer leaf) or as a stream, whole, with the quota on their sum', async () => {
    const bytes = new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff)
    const cid = CID.createV1(raw.code, await sha256.digest(bytes))
    // empty and odd-sized parts, views into one buffer
    await store.put(cid, [bytes.subarray(0, 0), bytes.subarray(0, 65_537), bytes.subarray(65_537, 200_000), bytes.subarray(200_000)])
    expect(await fs.readFile(fileOf(dir, cid))).toEqual(Buffer.from(bytes))
    expect(store.stat()).toEqual({ blocks: 1, bytes: 300_000 })
    const other = bytes.slice(1)
    const cid2 = CID.createV1(raw.code, await sha256.digest(other))
    await store.put(cid2, (async function * () { yield other.subarray(0, 10); yield other.subarray(10) })())
    expect(Buffer.compare((await all(store.get(cid2)))[0] as Uint8Array, other)).toBe(0)
    await store.close()
    store = createBlockstore({ path: dir, maxBytes: 700_000 })
    await store.open()
    const big = new Uint8Array(200_000).fill(3)
    const cid3 = CID.createV1(raw.code, await sha256.digest(big))
    await expect(store.put(cid3, [big.subarray(0, 100_000), big.subarray(100_000)])).rejects.toHaveProperty('code', 'ERR_QUOTA_EXCEEDED')
  })

  it('refuses a put past the quota and writes nothing', async () => {
    await store.close()
    store = createBlockstore({ path: dir, maxBytes: 10 })
    await store.open()
    const a = await block('12345678')
    const b = await block('abc')
    await store.put(a.cid, a.bytes)
    await expect(store.put(b.cid, b.bytes)).rejects.toHaveProperty('code', 'ERR_QUOTA_EXCEEDED')
    expect(await store.has(b.cid)).toBe(false)
    expect(existsSync(fileOf(dir, b.cid))).toBe(false)
    expect(store.stat()).toEqual({ blocks: 1, bytes: 8 })
    // rewriting an existing block costs nothing
    await store.put(a.cid, a.bytes)
  })

  it('keeps its counters across a clean close and reopen', async () => {
    const a = await block('persist me')
    await store.put(a.cid, a.bytes)
    await store.close()
    store = createBlockstore({ path: dir })
    await store.open()
    expect(store.stat()).toEqual({ blocks: 1, bytes: a.bytes.length })
  })

  it('a delete is seen by has/get/put issued after it, before it resolves', async () => {
    const a = await block('racy')
    await store.put(a.cid, a.bytes)
    const deleting = store.delete(a.cid)
    const has = store.has(a.cid)
    expect(await has).toBe(false)
    await deleting
    const again = store.delete(a.cid)
    const put = store.put(a.cid, a.bytes)
    await Promise.all([again, put])
    expect(await store.has(a.cid)).toBe(true)
    expect(store.stat().blocks).toBe(1)
  })

  it('after an unclean shutdown, drops blocks written since the last sync that do not match their hash', async () => {
    const synced = await block('synced before the crash')
    const torn = await block('this block will be torn')
    const fine = await block('unsynced but whole')
    await store.put(synced.cid, synced.bytes)
    await store.sync()
    await store.put(torn.cid, torn.bytes)
    await store.put(fine.cid, fine.bytes)
    // Simulate a power cut that kept the rename but lost the data: no close(), so the dirty marker stays.
    await fs.writeFile(fileOf(dir, torn.cid), '')
    await fs.writeFile(join(dir, torn.cid.toString().slice(-2), '.leftover.tmp'), 'x').catch(() => {})

    const after = createBlockstore({ path: dir })
    await after.open()
    expect(await after.has(torn.cid)).toBe(false)
    expect(await after.has(fine.cid)).toBe(true)
    expect(await after.has(synced.cid)).toBe(true)
    expect(after.stat()).toEqual({ blocks: 2, bytes: synced.bytes.length + fine.bytes.length })
    await after.close()
    store = createBlockstore({ path: dir })
    await store.open()
  })

  it('still verifies after a crash when the clock at boot was behind the last sync (no RTC)', async () => {
    await store.close()
    // the last run synced "tomorrow"; this boot's clock is behind it
    const meta = join(dir, '.meta-stat')
    const stat = JSON.parse(await fs.readFile(meta, 'utf8'))
    await fs.writeFile(meta, JSON.stringify({ ...stat, syncedAt: Date.now() + 86_400_000 }))
    store = createBlockstore({ path: dir })
    await store.open()
    const torn = await block('torn after a boot with a late clock')
    await store.put(torn.cid, torn.bytes)
    await fs.writeFile(fileOf(dir, torn.cid), '')
    const after = createBlockstore({ path: dir })
    await after.open()
    expect(await after.has(torn.cid)).toBe(false)
    expect(after.stat().blocks).toBe(0)
    await after.close()
  })

  it('a clean close leaves no dirty marker, so reopening does not re-verify', async () => {
    const a = await block('clean')
    await store.put(a.cid, a.bytes)
    await store.close()
    // Wrong bytes written behind the store's back are not noticed after a clean close: proof it skipped the scan.
    await fs.writeFile(fileOf(dir, a.cid), 'garbage')
    store = createBlockstore({ path: dir })
    await store.open()
    expect(await store.has(a.cid)).toBe(true)
  })

  it('concurrent sync() callers share passes and all resolve', async () => {
    const blocks = await Promise.all(Array.from({ length: 20 }, (_, i) => block(`s${i}`)))
    const syncs: Array<Promise<void>> = []
    for (const b of blocks) {
      await store.put(b.cid, b.bytes)
      syncs.push(store.sync())
    }
    await Promise.all(syncs)
  })

  it.skipIf(!existsSync('/usr/bin/strace'))('sync() fsyncs every block file written through the page cache and every directory before it resolves; direct writes are durable as written', async () => {
    const trace = join(tmp, 'trace.txt')
    const script = join(here, 'fixtures', 'sync-under-strace.ts')
    const { stdout } = await run('/usr/bin/strace', ['-f', '-e', 'trace=fsync,fdatasync,openat,rename', '-y', '-o', trace, process.execPath, script, tmp, '40', '6'], { cwd: join(here, '..', '..') })
    const { files, big, direct, marker } = JSON.parse(stdout) as { files: string[], big: string[], direct: number, marker: string }
    const traced = (await fs.readFile(trace, 'utf8')).split('\n')
    const lines = traced.filter(l => /f(data)?sync\(\d+</.test(l))
    const synced = lines.map(l => /<([^>]+)>/.exec(l)?.[1] ?? '')
    const markerAt = synced.indexOf(marker)
    expect(markerAt).toBeGreaterThan(0)
    const before = new Set(synced.slice(0, markerAt))
    expect(files).toHaveLength(40)
    for (const file of files) {
      expect(before.has(file), `fsync of ${file} before sync() resolved`).toBe(true)
      expect(before.has(dirname(file)), `fsync of dir ${dirname(file)}`).toBe(true)
    }
    expect(before.has(join(tmp, 'blocks'))).toBe(true)
    // Blocks written with O_DIRECT go to their own name with O_DSYNC, durable as written: no
    // temporary file renamed into place, no fsync of their own, only their directory's.
    expect(direct).toBe(6)
    for (const file of big) {
      const opens = traced.filter(l => l.includes('openat(') && l.includes(`"${file}"`) && l.includes('O_CREAT'))
      expect(opens, `created ${file}`).toHaveLength(1)
      expect(opens[0]).toMatch(/O_EXCL/)
      expect(opens[0]).toMatch(/O_DIRECT/)
      expect(opens[0]).toMatch(/O_DSYNC/)
      expect(traced.some(l => l.includes('rename(') && l.includes(file)), `rename to ${file}`).toBe(false)
      expect(synced).not.toContain(file)
      expect(before.has(dirname(file)), `fsync of dir ${dirname(file)}`).toBe(true)
    }
  })

  itOnTmpfs('a full disk gives ERR_DISK_FULL and leaves no half-written block', '256k', import.meta.filename, async (mnt) => {
    const small = createBlockstore({ path: join(mnt, 'blocks') })
    await small.open()
    const big = await block(new Uint8Array(512 * 1024).fill(7))
    const err = await small.put(big.cid, big.bytes).catch(e => e)
    expect(err).toHaveProperty('code', 'ERR_DISK_FULL')
    expect(err.message).toContain(multihashKey(big.cid))
    expect(await small.has(big.cid)).toBe(false)
    const leftovers = (await fs.readdir(join(mnt, 'blocks'), { recursive: true })).filter(n => n.endsWith('.tmp') || n.endsWith('.data'))
    expect(leftovers).toEqual([])
    expect(small.stat()).toEqual({ blocks: 0, bytes: 0 })
    await small.close()
  })
})
