import fs from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import all from 'it-all'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { createBlockstore, multihashKey } from '../../src/store/blockstore.ts'
import { createAutoGc, createGc } from '../../src/store/gc.ts'
import { createLeases } from '../../src/store/leases.ts'
import type { FlatBlockstore } from '../../src/store/blockstore.ts'
import type { GcResult } from '../../src/store/gc.ts'
import type { BlockLeases } from '../../src/store/types.ts'

async function block (text: string): Promise<{ cid: CID, bytes: Uint8Array }> {
  const bytes = new TextEncoder().encode(text)
  return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes }
}

/** The store's GC surface, counting removes and the most in flight at once. */
function countingRemoves (store: FlatBlockstore): Pick<FlatBlockstore, 'cids' | 'delete' | 'remove'> & { removes: number, peak: number } {
  let inflight = 0
  const counting = {
    removes: 0,
    peak: 0,
    cids: store.cids.bind(store),
    delete: store.delete.bind(store),
    remove: async (cid: CID): Promise<number> => {
      counting.removes++
      counting.peak = Math.max(counting.peak, ++inflight)
      try {
        return await store.remove(cid)
      } finally {
        inflight--
      }
    }
  }
  return counting
}

describe('gc', () => {
  let tmp: string
  let store: FlatBlockstore
  let leases: BlockLeases

  beforeEach(async () => {
    tmp = await fs.mkdtemp(join(tmpdir(), 'pinbox-gc-'))
    store = createBlockstore({ path: join(tmp, 'blocks') })
    await store.open()
    leases = createLeases()
  })

  afterEach(async () => {
    await store.close()
    await fs.rm(tmp, { recursive: true, force: true })
  })

  it('removes only unreachable, unleased blocks', async () => {
    const [pinned, leased, garbage1, garbage2] = await Promise.all(['pinned', 'leased', 'garbage one', 'garbage two!'].map(block))
    for (const b of [pinned, leased, garbage1, garbage2]) await store.put(b!.cid, b!.bytes)
    const lease = leases.open()
    lease.add(leased!.cid)
    // the pin refers to the block as dag-pb CIDv0: matched by multihash
    const pinnedAs = CID.createV0(pinned!.cid.multihash as Parameters<typeof CID.createV0>[0])
    // the open lease stands for a block being written: no standing aside in this test
    const gc = createGc({ blockstore: store, leases, reachable: async function * () { yield pinnedAs } }, { yield: { waitMs: 0 } })
    const result = await gc.run()
    expect(result.removed).toBe(2)
    expect(result.freedBytes).toBe(garbage1!.bytes.length + garbage2!.bytes.length)
    expect(result.durationMs).toBeGreaterThanOrEqual(0)
    expect(result.markMs).toBeGreaterThanOrEqual(0)
    expect(result.markMs).toBeLessThanOrEqual(result.durationMs)
    expect(await store.has(pinned!.cid)).toBe(true)
    expect(await store.has(leased!.cid)).toBe(true)
    expect(await store.has(garbage1!.cid)).toBe(false)
    expect(await store.has(garbage2!.cid)).toBe(false)
    expect(store.stat().blocks).toBe(2)

    lease.close()
    expect((await gc.run()).removed).toBe(1)
    expect(await store.has(leased!.cid)).toBe(false)
  })

  it('ends a run that removed blocks with a sync pass: the deletions are durable and the store is clean when it resolves', async () => {
    const blocks = await Promise.all(Array.from({ length: 40 }, async (_, i) => await block(`sync ${i}`)))
    for (const b of blocks) await store.put(b.cid, b.bytes)
    await store.sync()
    const marker = join(tmp, 'blocks', '.meta-dirty')
    await expect(fs.access(marker)).rejects.toThrow()
    let syncs = 0
    const sync = store.sync.bind(store)
    const gc = createGc({
      blockstore: { cids: store.cids.bind(store), delete: store.delete.bind(store), remove: store.remove.bind(store), sync: async (options) => { syncs++; await sync(options) } },
      leases,
      reachable: async function * () { yield (blocks[0] as { cid: CID }).cid }
    })
    expect((await gc.run()).removed).toBe(39)
    expect(syncs).toBe(1)
    // the deletes set the crash-recovery marker; the sync pass that fsynced their directories cleared it
    await expect(fs.access(marker)).rejects.toThrow()
    // nothing removed, nothing to sync
    expect((await gc.run()).removed).toBe(0)
    expect(syncs).toBe(1)
  })

  it('runs one GC at a time: a second caller shares the run in progress', async () => {
    for (let i = 0; i < 50; i++) {
      const b = await block(`g${i}`)
      await store.put(b.cid, b.bytes)
    }
    const gc = createGc({ blockstore: store, leases, reachable: async function * () {} })
    const first = gc.run()
    expect(gc.running).toBe(true)
    const second = gc.run()
    const [a, b] = await Promise.all([first, second])
    expect(a).toBe(b)
    expect(a.removed).toBe(50)
    expect(gc.running).toBe(false)
  })

  it('stops when aborted and still ends the GC window of the leases', async () => {
    for (let i = 0; i < 200; i++) {
      const b = await block(`a${i}`)
      await store.put(b.cid, b.bytes)
    }
    const controller = new AbortController()
    let ended = 0
    const watchedLeases = { ...leases, endGc () { ended++; leases.endGc() } }
    const gc = createGc({
      blockstore: store,
      leases: watchedLeases,
      reachable: async function * () {}
    }, { concurrency: 4 })
    const running = gc.run({ signal: controller.signal })
    controller.abort()
    await expect(running).rejects.toHaveProperty('name', 'AbortError')
    expect(ended).toBe(1)
    expect(store.stat().blocks).toBeGreaterThan(0)
    expect(gc.running).toBe(false)
  })

  it('loses nothing a concurrent writer leases while it sweeps ~20k unreachable blocks', async () => {
    const N = 20_000
    const garbage: Array<{ cid: CID, bytes: Uint8Array }> = []
    for (let i = 0; i < N; i += 500) {
      const batch = await Promise.all(Array.from({ length: 500 }, (_, j) => block(`garbage ${i + j}`)))
      await Promise.all(batch.map(b => store.put(b.cid, b.bytes)))
      garbage.push(...batch)
    }
    expect(store.stat().blocks).toBe(N)

    // The pins: what writers finished (their lease closes once the "pin record" is written).
    const pinned = new Map<string, { cid: CID, bytes: Uint8Array }>()
    // Tells the writer which blocks the sweep has just decided to delete, so it re-adds exactly those.
    const byKey = new Map(garbage.map(b => [multihashKey(b.cid), b]))
    let justRemoved: CID | undefined
    const watched = {
      cids: store.cids.bind(store),
      delete: store.delete.bind(store),
      remove (cid: CID) {
        justRemoved = cid
        return store.remove(cid)
      }
    }
    const gc = createGc({
      blockstore: watched,
      leases,
      reachable: async function * () {
        for (const b of [...pinned.values()]) yield b.cid
      }
    }, { yield: false })

    let done = false
    let running = true
    let writes = 0
    let writesDuringGc = 0
    const writer = (async () => {
      let i = 0
      while (!done) {
        const lease = leases.open()
        // Most writes re-add bytes that exist as garbage, often one whose delete is in flight: the racy case.
        const racing = justRemoved != null ? byKey.get(multihashKey(justRemoved)) : undefined
        const b = i % 4 === 3 ? await block(`fresh ${i}`) : (i % 4 !== 0 && racing != null) ? racing : garbage[(i * 7919) % N]!
        lease.add(b.cid)
        if (!(await store.has(b.cid))) await store.put(b.cid, b.bytes)
        pinned.set(multihashKey(b.cid), b)
        lease.close()
        writes++
        if (running) writesDuringGc++
        i++
        if (i % 16 === 0) await new Promise(resolve => setImmediate(resolve))
      }
    })()
    const result = await gc.run()
    running = false
    done = true
    await writer

    expect(writesDuringGc).toBeGreaterThan(50)
    expect(result.removed).toBeGreaterThan(N / 2)
    for (const b of pinned.values()) {
      const bytes = Buffer.concat(await all(store.get(b.cid)))
      expect(bytes.equals(Buffer.from(b.bytes)), `block ${b.cid} kept`).toBe(true)
    }
    // and the garbage nobody wrote again is gone
    const left = new Set((await all(store.cids())).map(c => multihashKey(c)))
    for (const b of garbage) {
      if (!pinned.has(multihashKey(b.cid))) expect(left.has(multihashKey(b.cid))).toBe(false)
    }
    expect(store.stat().blocks).toBe(left.size)
    console.log(`gc over ${N} blocks: removed ${result.removed} in ${result.durationMs} ms with ${writesDuringGc} concurrent writes (${writes} total)`)
  })

  it('yields to a writer: one delete at a time while a lease is open, full concurrency without one', async () => {
    const blocks = await Promise.all(Array.from({ length: 200 }, async (_, i) => await block(`garbage ${i}`)))
    for (const b of blocks) await store.put(b.cid, b.bytes)
    const counting = countingRemoves(store)
    const gc = createGc({ blockstore: counting, leases, reachable: async function * () {} }, { yield: { waitMs: 50, sliceMs: 1, pauseMs: 1 } })

    const writer = leases.open()
    expect(leases.active).toBe(1)
    expect((await gc.run()).removed).toBe(200)
    expect(counting.peak).toBe(1)
    writer.close()
    expect(leases.active).toBe(0)

    for (const b of blocks) await store.put(b.cid, b.bytes)
    counting.peak = 0
    expect((await gc.run()).removed).toBe(200)
    expect(counting.peak).toBeGreaterThan(1)
  })

  it('stands aside while a writer works, then sweeps at full concurrency', async () => {
    const blocks = await Promise.all(Array.from({ length: 100 }, async (_, i) => await block(`garbage ${i}`)))
    for (const b of blocks) await store.put(b.cid, b.bytes)
    const counting = countingRemoves(store)
    const gc = createGc({ blockstore: counting, leases, reachable: async function * () {} }, { yield: { waitMs: 60_000 } })
    const writer = leases.open()
    const running = gc.run()
    await new Promise(resolve => setTimeout(resolve, 200))
    expect(counting.removes).toBe(0)
    writer.close()
    expect((await running).removed).toBe(100)
    expect(counting.peak).toBeGreaterThan(1)
  })

  it('auto-GC runs past the watermark of the quota, on poke and on the interval', async () => {
    const gc = createGc({ blockstore: store, leases, reachable: async function * () {} })
    const runs: GcResult[] = []
    let resolveRun: (() => void) | undefined
    const auto = createAutoGc({ gc, blockstore: store }, {
      maxBytes: 1000,
      watermarkPercent: 50,
      intervalMs: 60_000,
      onRun: (r) => { runs.push(r); resolveRun?.() }
    })
    auto.start()
    auto.start()
    try {
      const small = await block('x'.repeat(400))
      await store.put(small.cid, small.bytes)
      auto.poke()
      expect(await auto.check()).toBeUndefined()
      expect(runs).toHaveLength(0)

      const more = await block('y'.repeat(200))
      await store.put(more.cid, more.bytes)
      const ran = new Promise<void>(resolve => { resolveRun = resolve })
      auto.poke()
      await ran
      expect(runs).toHaveLength(1)
      expect(runs[0]?.removed).toBe(2)
      expect(store.stat().bytes).toBe(0)
    } finally {
      await auto.stop()
      await auto.stop()
    }

    const timed = createAutoGc({ gc, blockstore: store }, { maxBytes: 100, watermarkPercent: 90, intervalMs: 20, onRun: () => { resolveRun?.() } })
    const big = await block('z'.repeat(150))
    await store.put(big.cid, big.bytes)
    const ran = new Promise<void>(resolve => { resolveRun = resolve })
    timed.start()
    await ran
    await timed.stop()
    expect(await store.has(big.cid)).toBe(false)
  })
})
