import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { CID } from 'multiformats/cid'
import { createHarness, collect, keys, makeDag, pbNode, rawBlock } from './utils.ts'
import type { Harness } from './utils.ts'
import type { PinDb, PinManagerComponents } from '../../src/pinning/pin-manager.ts'
import type { BufferPool } from '../../src/store/buffer-pool.ts'

async function expectCode (p: Promise<unknown> | AsyncIterable<unknown>, code: string): Promise<Error> {
  try {
    if (Symbol.asyncIterator in p) await collect(p)
    else await p
  } catch (err: any) {
    expect(err.code).toBe(code)
    return err
  }
  throw new Error(`expected ${code}`)
}

/** Finds the file holding `bytes` in the flat-file store, whatever its sharding scheme. */
async function blockFile (dir: string, bytes: Uint8Array): Promise<string> {
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const path = join(entry.parentPath, entry.name)
    const content = await readFile(path)
    if (Buffer.compare(content, Buffer.from(bytes)) === 0) return path
  }
  throw new Error('block file not found')
}

describe('pin manager', () => {
  let h: Harness

  beforeEach(async () => {
    // small chunks so that block lists span several LevelDB records
    h = await createHarness({ chunkSize: 7 })
  })

  afterEach(async () => {
    await h.close()
  })

  it('pins a DAG recursively, counting its blocks and bytes', async () => {
    const dag = await makeDag(h.blockstore, 'a', 20)
    let progress = 0
    const pin = await h.pins.add(dag.root, { name: 'docs', metadata: { app: 'x' }, onProgress: n => { progress = n } })
    expect(pin).toMatchObject({ type: 'recursive', name: 'docs', metadata: { app: 'x' }, blocks: 21, bytes: dag.bytes })
    expect(pin.cid.equals(dag.root)).toBe(true)
    expect(progress).toBe(21)
    expect(await h.pins.get(dag.root)).toEqual(pin)
    expect(keys(await collect(h.pins.reachable()))).toEqual(keys(dag.blocks))
  })

  it('pins only the root block for a direct pin', async () => {
    const dag = await makeDag(h.blockstore, 'b', 3)
    await h.blockstore.delete(dag.blocks[1] as CID)
    const pin = await h.pins.add(dag.root, { recursive: false })
    expect(pin).toMatchObject({ type: 'direct', blocks: 1 })
    expect(keys(await collect(h.pins.reachable()))).toEqual(keys([dag.root]))
    // upgrading to recursive needs the whole DAG
    const err = await expectCode(h.pins.add(dag.root), 'ERR_BLOCK_MISSING')
    expect(err.message).toContain((dag.blocks[1] as CID).toString())
    expect((await h.pins.get(dag.root))?.type).toBe('direct')
  })

  it('refuses a DAG with a missing block and writes no record', async () => {
    const dag = await makeDag(h.blockstore, 'c', 10)
    const missing = dag.blocks[6] as CID
    await h.blockstore.delete(missing)
    const err = await expectCode(h.pins.add(dag.root, { name: 'broken' }), 'ERR_BLOCK_MISSING')
    expect(err.message).toContain(missing.toString())
    expect(await h.pins.get(dag.root)).toBeUndefined()
    expect(await collect(h.pins.ls())).toEqual([])
    expect(await collect(h.pins.reachable())).toEqual([])
    // a direct pin on a missing root fails the same way
    await expectCode(h.pins.add(missing, { recursive: false }), 'ERR_BLOCK_MISSING')
    expect(await h.pins.get(missing)).toBeUndefined()
  })

  it('lists by type, name and CID', async () => {
    const a = await makeDag(h.blockstore, 'a', 4)
    const b = await makeDag(h.blockstore, 'b', 2)
    const c = await makeDag(h.blockstore, 'c', 1)
    // a sub-DAG of b pinned on its own: its root is both a recursive pin and indirect under b's parent
    const parent = await pbNode(h.blockstore, [b.root, a.blocks[1] as CID])
    await h.pins.add(a.root, { name: 'one' })
    await h.pins.add(parent.cid, { name: 'two' })
    await h.pins.add(b.root, { name: 'one' })
    await h.pins.add(c.root, { recursive: false, name: 'three' })

    const recursive = await collect(h.pins.ls({ type: 'recursive' }))
    expect(keys(recursive.map(p => p.cid))).toEqual(keys([a.root, b.root, parent.cid]))
    expect(recursive.every(p => p.type === 'recursive')).toBe(true)

    expect(await collect(h.pins.ls({ type: 'direct' }))).toEqual([{ cid: c.root, type: 'direct', name: 'three' }])

    const indirect = await collect(h.pins.ls({ type: 'indirect' }))
    expect(indirect.every(p => p.type === 'indirect')).toBe(true)
    // b.root is reached by `parent`, so it is indirectly pinned too; roots of their own DAG are not
    expect(keys(indirect.map(p => p.cid))).toEqual(keys([...a.blocks.slice(1), ...b.blocks]))

    const all = await collect(h.pins.ls())
    expect(keys(all.map(p => p.cid))).toEqual(keys([a.root, parent.cid, c.root, ...a.blocks.slice(1), ...b.blocks]))
    expect(all.find(p => p.cid.equals(b.root))?.type).toBe('recursive')

    const named = await collect(h.pins.ls({ name: 'one' }))
    expect(keys(named.map(p => p.cid))).toEqual(keys([a.root, b.root]))
    expect(await collect(h.pins.ls({ name: 'on' }))).toEqual([])

    const byCid = await collect(h.pins.ls({ cids: [c.root, a.blocks[2] as CID] }))
    expect(byCid).toEqual([{ cid: c.root, type: 'direct', name: 'three' }, { cid: a.blocks[2], type: 'indirect' }])
    // a CIDv0 names the same pin as its CIDv1
    const v0 = CID.createV0(parent.cid.multihash as any)
    expect((await collect(h.pins.ls({ cids: [v0] })))[0]?.type).toBe('recursive')

    const stranger = await rawBlock(h.blockstore, new TextEncoder().encode('not pinned'))
    await expectCode(h.pins.ls({ cids: [a.root, stranger] }), 'ERR_NOT_PINNED')
    await expectCode(h.pins.ls({ type: 'recursive', cids: [a.blocks[1] as CID] }), 'ERR_NOT_PINNED')
    await expectCode(h.pins.ls({ type: 'direct', cids: [a.root] }), 'ERR_NOT_PINNED')
  })

  it('re-pinning updates name and metadata and upgrades direct to recursive', async () => {
    const dag = await makeDag(h.blockstore, 'r', 3)
    const first = await h.pins.add(dag.root, { recursive: false, name: 'old', metadata: { k: '1' } })
    const renamed = await h.pins.add(dag.root, { recursive: false, name: 'new' })
    expect(renamed).toMatchObject({ type: 'direct', name: 'new', metadata: { k: '1' }, created: first.created })
    const upgraded = await h.pins.add(dag.root, { metadata: { k: '2' } })
    expect(upgraded).toMatchObject({ type: 'recursive', name: 'new', metadata: { k: '2' }, blocks: 4, created: first.created })
    // a direct request never downgrades a recursive pin
    expect(await h.pins.add(dag.root, { recursive: false })).toMatchObject({ type: 'recursive', blocks: 4 })
    expect(await collect(h.pins.ls({ type: 'recursive' }))).toHaveLength(1)
  })

  it('removes pins', async () => {
    const a = await makeDag(h.blockstore, 'a', 20)
    const b = await makeDag(h.blockstore, 'b', 2)
    await h.pins.add(a.root)
    await h.pins.add(b.root, { recursive: false })

    await expectCode(h.pins.rm(a.root, { recursive: false }), 'ERR_PINNED_RECURSIVELY')
    await expectCode(h.pins.rm(a.blocks[3] as CID), 'ERR_NOT_PINNED')
    expect((await h.pins.rm(a.root)).type).toBe('recursive')
    expect(await h.pins.get(a.root)).toBeUndefined()
    await expectCode(h.pins.rm(a.root), 'ERR_NOT_PINNED')
    // no block list left behind
    expect(keys(await collect(h.pins.reachable()))).toEqual(keys([b.root]))
    expect(await collect(h.pins.ls({ type: 'indirect' }))).toEqual([])

    await h.pins.rm(b.root, { recursive: false })
    expect(await collect(h.pins.ls())).toEqual([])
    expect(await collect(h.db.keys())).toEqual([])
  })

  it('updates a pin from one DAG to another, keeping name and metadata', async () => {
    const v1 = await makeDag(h.blockstore, 'v1', 3)
    const v2 = await makeDag(h.blockstore, 'v2', 5)
    const v3 = await makeDag(h.blockstore, 'v3', 1)
    await h.pins.add(v1.root, { name: 'site', metadata: { rev: '1' } })
    const pin = await h.pins.update(v1.root, v2.root)
    expect(pin).toMatchObject({ type: 'recursive', name: 'site', metadata: { rev: '1' }, blocks: 6 })
    expect(pin.cid.equals(v2.root)).toBe(true)
    expect(await h.pins.get(v1.root)).toBeUndefined()

    await h.pins.update(v2.root, v3.root, { unpin: false })
    expect(keys((await collect(h.pins.ls({ type: 'recursive' }))).map(p => p.cid))).toEqual(keys([v2.root, v3.root]))
    await expectCode(h.pins.update(v1.root, v3.root), 'ERR_NOT_PINNED')

    // `to` incomplete: the old pin stays
    await h.blockstore.delete(v1.blocks[2] as CID)
    await expectCode(h.pins.update(v3.root, v1.root), 'ERR_BLOCK_MISSING')
    expect(await h.pins.get(v3.root)).toBeDefined()
  })

  it('verify names a corrupted and a missing block and keeps going', async () => {
    const good = await makeDag(h.blockstore, 'good', 5)
    const bad = await makeDag(h.blockstore, 'bad', 12)
    const direct = await rawBlock(h.blockstore, new TextEncoder().encode('direct block'))
    await h.pins.add(good.root)
    await h.pins.add(bad.root)
    await h.pins.add(direct, { recursive: false })
    await h.blockstore.sync()

    const corrupt = bad.blocks[3] as CID
    const gone = bad.blocks[9] as CID
    const original = new TextEncoder().encode('bad:2:'.padEnd(100, '.'))
    const file = await blockFile(join(h.dir, 'blocks'), original)
    await writeFile(file, new TextEncoder().encode('evil:2:'.padEnd(100, '.')))
    await h.blockstore.delete(gone)
    const directFile = await blockFile(join(h.dir, 'blocks'), new TextEncoder().encode('direct block'))
    await writeFile(directFile, new TextEncoder().encode('tampered'))

    const results = await collect(h.pins.verify())
    expect(results).toHaveLength(3)
    const byRoot = new Map(results.map(r => [r.cid.toString(), r]))
    expect(byRoot.get(good.root.toString())).toEqual({ cid: good.root, ok: true, bad: [] })
    const badResult = byRoot.get(bad.root.toString())
    expect(badResult?.ok).toBe(false)
    expect(badResult?.bad.map(b => [b.cid.toString(), b.error])).toEqual([
      [corrupt.toString(), 'hash-mismatch'],
      [gone.toString(), 'missing']
    ])
    expect(byRoot.get(direct.toString())?.bad).toEqual([{ cid: direct, error: 'hash-mismatch' }])

    expect(await collect(h.pins.verify({ cids: [good.root] }))).toEqual([{ cid: good.root, ok: true, bad: [] }])
    await expectCode(h.pins.verify({ cids: [corrupt] }), 'ERR_NOT_PINNED')
  })

  it('verify reads each block into a reused buffer and gives it back, the checks unchanged', async () => {
    const dag = await makeDag(h.blockstore, 'pooled', 40, 4096)
    await h.pins.add(dag.root)
    const pools = new Set<BufferPool>()
    let reads = 0
    const store = h.blockstore
    const getPooled = store.getPooled?.bind(store)
    if (getPooled == null) throw new Error('the flat store reads into pooled buffers')
    store.getPooled = async (cid, pool, options) => {
      pools.add(pool)
      reads++
      return await getPooled(cid, pool, options)
    }
    expect(await collect(h.pins.verify())).toEqual([{ cid: dag.root, ok: true, bad: [] }])
    expect(reads).toBe(41)
    // one pool, its buffers back in it: the 41 reads did not each leave a buffer behind for V8
    expect(pools.size).toBe(1)
    expect([...pools][0]?.free).toBeGreaterThan(0)
  })

  it('keeps pins across a reopen of the LevelDB', async () => {
    const dag = await makeDag(h.blockstore, 'p', 15)
    const pin = await h.pins.add(dag.root, { name: 'kept', metadata: { a: 'b' } })
    await h.reopen()
    expect(await h.pins.get(dag.root)).toEqual(pin)
    expect(keys(await collect(h.pins.reachable()))).toEqual(keys(dag.blocks))
    expect(await collect(h.pins.ls({ name: 'kept' }))).toEqual([{ cid: dag.root, type: 'recursive', name: 'kept' }])
    expect((await collect(h.pins.verify()))[0]?.ok).toBe(true)
  })

  it('an aborted add writes no record and releases its lease', async () => {
    const dag = await makeDag(h.blockstore, 'abort', 30)
    const controller = new AbortController()
    await expect(h.pins.add(dag.root, {
      signal: controller.signal,
      onProgress: n => { if (n === 5) controller.abort() }
    })).rejects.toThrow()
    expect(controller.signal.aborted).toBe(true)
    expect(await h.pins.get(dag.root)).toBeUndefined()
    expect(dag.blocks.some(c => h.leases.isProtected(c))).toBe(false)

    // the same holds for a failed walk, and a successful add closes its lease too
    await h.blockstore.delete(dag.blocks[20] as CID)
    await expectCode(h.pins.add(dag.root), 'ERR_BLOCK_MISSING')
    expect(dag.blocks.some(c => h.leases.isProtected(c))).toBe(false)
    const other = await makeDag(h.blockstore, 'fine', 3)
    await h.pins.add(other.root)
    expect(other.blocks.some(c => h.leases.isProtected(c))).toBe(false)
  })

  it('stop() aborts an add in flight', async () => {
    const dag = await makeDag(h.blockstore, 'stopping', 30)
    let stopping: Promise<void> | undefined
    const adding = h.pins.add(dag.root, { onProgress: n => { if (n === 3) stopping = h.pins.stop() } })
    await expect(adding).rejects.toThrow()
    await stopping
    await h.pins.start()
    expect(await h.pins.get(dag.root)).toBeUndefined()
  })

  it('refuses work after stop and resumes after start', async () => {
    const dag = await makeDag(h.blockstore, 's', 2)
    await h.pins.stop()
    await h.pins.stop()
    await expectCode(h.pins.add(dag.root), 'ERR_PIN_MANAGER_STOPPED')
    await h.pins.start()
    await h.pins.start()
    expect((await h.pins.add(dag.root)).blocks).toBe(3)
  })
})

describe('pin manager durability', () => {
  it('acknowledges a pin only after the blocks are synced and the record is written with sync', async () => {
    const events: string[] = []
    const batches: Array<{ sync: unknown }> = []
    // Records every batch the manager writes, through the real LevelDB underneath.
    const spyDb = (db: PinDb): PinDb => new Proxy(db, {
      get (target, prop) {
        if (prop === 'batch') {
          return async (ops: any, options: any) => {
            events.push('batch-start')
            batches.push({ sync: options?.sync })
            await target.batch(ops, options)
            events.push('batch-done')
          }
        }
        const value = Reflect.get(target, prop, target)
        return typeof value === 'function' ? value.bind(target) : value
      }
    })
    const h = await createHarness({}, { wrapDb: spyDb })
    try {
      const realSync = h.blockstore.sync.bind(h.blockstore)
      h.blockstore.sync = async (options) => {
        events.push('sync-start')
        // a slow disk: the record must still wait for it
        await new Promise(resolve => setTimeout(resolve, 50))
        await realSync(options)
        events.push('sync-done')
      }
      const dag = await makeDag(h.blockstore, 'd', 5)
      await h.pins.add(dag.root).then(() => events.push('add-resolved'))
      expect(events).toEqual(['sync-start', 'sync-done', 'batch-start', 'batch-done', 'add-resolved'])
      expect(batches).toEqual([{ sync: true }])

      events.length = 0
      batches.length = 0
      await h.pins.rm(dag.root).then(() => events.push('rm-resolved'))
      expect(events).toEqual(['batch-start', 'batch-done', 'rm-resolved'])
      expect(batches).toEqual([{ sync: true }])
    } finally {
      await h.close()
    }
  })
})

describe('pin manager with known blocks (an add\'s own leaves)', () => {
  it('lists the DAG in the walker\'s order, reading only the blocks that link', async () => {
    const reads: CID[] = []
    const spy = (store: PinManagerComponents['blockstore']): PinManagerComponents['blockstore'] => ({
      get: (cid, options) => { reads.push(cid); return store.get(cid, options) },
      has: async (cid, options) => await store.has(cid, options),
      sync: async (options) => { await store.sync(options) }
    })
    const h = await createHarness({ chunkSize: 7 }, { wrapBlockstore: spy })
    try {
      const a = await makeDag(h.blockstore, 'a', 12)
      const b = await makeDag(h.blockstore, 'b', 3)
      // two levels, a leaf shared by both subtrees, and one leaf directly under the root
      const root = await pbNode(h.blockstore, [a.root, b.root, a.blocks[2] as CID])
      const walked = await h.pins.add(root.cid, { name: 'w' })
      const walkedList = await collect(h.pins.reachable())
      await h.pins.rm(root.cid)
      reads.length = 0

      const leaves = [...a.blocks.slice(1), ...b.blocks.slice(1)]
      const known = await Promise.all(leaves.map(async cid => ({ cid, size: (await h.blockstore.size?.(cid)) ?? 100 })))
      const pin = await h.pins.add(root.cid, { name: 'k', knownBlocks: known })
      expect({ ...pin, created: 0, name: 'w' }).toEqual({ ...walked, created: 0 })
      expect(await collect(h.pins.reachable())).toEqual(walkedList)
      expect(keys(reads)).toEqual(keys([root.cid, a.root, b.root]))
    } finally {
      await h.close()
    }
  })

  it('reads a raw block it was not told of, so a missing one still fails the pin', async () => {
    const h = await createHarness()
    try {
      const dag = await makeDag(h.blockstore, 'm', 4)
      const unlisted = dag.blocks[3] as CID
      const known = dag.blocks.slice(1).filter(c => !c.equals(unlisted)).map(cid => ({ cid, size: 100 }))
      await h.blockstore.delete(unlisted)
      await expectCode(h.pins.add(dag.root, { knownBlocks: known }), 'ERR_BLOCK_MISSING')
      expect(await h.pins.get(dag.root)).toBeUndefined()
      // a block the caller wrote but the root does not reach is not pinned
      const stray = await rawBlock(h.blockstore, new TextEncoder().encode('stray'))
      const other = await makeDag(h.blockstore, 'o', 2)
      const pin = await h.pins.add(other.root, { knownBlocks: [...other.blocks.slice(1), stray].map(cid => ({ cid, size: 100 })) })
      expect(pin.blocks).toBe(3)
      expect(keys(await collect(h.pins.reachable()))).toEqual(keys(other.blocks))
    } finally {
      await h.close()
    }
  })

  it('still syncs the blocks before it writes the record', async () => {
    const events: string[] = []
    const h = await createHarness()
    try {
      const realSync = h.blockstore.sync.bind(h.blockstore)
      h.blockstore.sync = async (options) => {
        events.push('sync-start')
        await new Promise(resolve => setTimeout(resolve, 50))
        await realSync(options)
        events.push('sync-done')
      }
      const dag = await makeDag(h.blockstore, 's', 5)
      const pending = h.pins.add(dag.root, { knownBlocks: dag.blocks.slice(1).map(cid => ({ cid, size: 100 })) })
      // no record before the sync finished
      await new Promise(resolve => setTimeout(resolve, 20))
      expect(await h.pins.get(dag.root)).toBeUndefined()
      await pending.then(() => events.push('add-resolved'))
      expect(events).toEqual(['sync-start', 'sync-done', 'add-resolved'])
      expect((await h.pins.get(dag.root))?.blocks).toBe(6)
    } finally {
      await h.close()
    }
  })
})
