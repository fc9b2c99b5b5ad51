import { randomBytes } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { importContent } from '../../src/content/import.ts'
import { resolveImportOptions } from '../../src/content/profiles.ts'
import { createGc } from '../../src/store/gc.ts'
import { createHarness, collect, makeDag, rawBlock } from './utils.ts'
import type { Harness } from './utils.ts'
import type { Gc } from '../../src/store/gc.ts'
import type { CID } from 'multiformats/cid'

describe('pin manager with the store GC', () => {
  let h: Harness
  let gc: Gc

  beforeEach(async () => {
    h = await createHarness()
    gc = createGc({ blockstore: h.blockstore, leases: h.leases, reachable: (options) => h.pins.reachable(options) })
  })

  afterEach(async () => {
    await h.close()
  })

  async function present (cids: CID[]): Promise<boolean[]> {
    return await Promise.all(cids.map(async c => await h.blockstore.has(c)))
  }

  it('removes unpinned blocks and keeps pinned ones', async () => {
    const pinned = await makeDag(h.blockstore, 'pinned', 30)
    const direct = await makeDag(h.blockstore, 'direct', 5)
    const loose = await makeDag(h.blockstore, 'loose', 10)
    await h.pins.add(pinned.root)
    await h.pins.add(direct.root, { recursive: false })

    const result = await gc.run()
    expect(result.removed).toBe(loose.blocks.length + direct.blocks.length - 1)
    expect(await present(pinned.blocks)).toEqual(pinned.blocks.map(() => true))
    expect(await present(direct.blocks)).toEqual(direct.blocks.map((_, i) => i === 0))
    expect(await present(loose.blocks)).toEqual(loose.blocks.map(() => false))
    expect((await collect(h.pins.verify())).every(r => r.ok)).toBe(true)

    await h.pins.rm(pinned.root)
    await gc.run()
    expect(await present(pinned.blocks)).toEqual(pinned.blocks.map(() => false))
    expect(await h.blockstore.has(direct.root)).toBe(true)
  })

  it('an import and pin running during a 20k-block sweep loses nothing', async () => {
    const garbage = 20_000
    await Promise.all(Array.from({ length: 8 }, async (_, w) => {
      for (let i = w; i < garbage; i += 8) await rawBlock(h.blockstore, new TextEncoder().encode(`garbage ${i}`))
    }))
    await h.blockstore.sync()

    const sweep = gc.run()
    let putsDuringGc = 0
    // The writer leases each block before it writes it and holds the lease until the pin is durable.
    const lease = h.leases.open()
    const leasingStore = {
      put: async (cid: CID, bytes: any) => {
        lease.add(cid)
        if (gc.running) putsDuringGc++
        return await h.blockstore.put(cid, bytes)
      }
    }
    const content = randomBytes(3_000 * 64)
    const options = { ...resolveImportOptions('unixfs-v1-2025'), chunkSize: 64, maxChildrenPerNode: 174 }
    const entries = await collect(importContent(leasingStore, [{ content: (async function * () { yield content })() }], options))
    const root = entries.at(-1)?.cid as CID
    const pin = await h.pins.add(root, { name: 'racing' })
    lease.close()
    const result = await sweep

    expect(putsDuringGc).toBeGreaterThan(1_000)
    expect(result.removed).toBe(garbage)
    expect(pin.blocks).toBeGreaterThan(3_000)
    const [verified] = await collect(h.pins.verify({ cids: [root] }))
    expect(verified).toEqual({ cid: root, ok: true, bad: [] })
    // and a later sweep keeps the pin whole
    expect((await gc.run()).removed).toBe(0)
    expect((await collect(h.pins.verify()))[0]?.ok).toBe(true)
  })

  it('a pin racing a GC over unleased blocks either holds every block or fails with no record', async () => {
    // blocks written earlier with no lease: fair game for the GC until the pin's walk leases them
    const dags = await Promise.all(Array.from({ length: 40 }, async (_, i) => await makeDag(h.blockstore, `race ${i}`, 50)))
    await h.blockstore.sync()
    const sweep = gc.run()
    const outcomes = await Promise.allSettled(dags.map(async d => await h.pins.add(d.root)))
    await sweep

    let kept = 0
    for (const [i, outcome] of outcomes.entries()) {
      const dag = dags[i]!
      if (outcome.status === 'fulfilled') {
        kept++
        expect(await present(dag.blocks)).toEqual(dag.blocks.map(() => true))
      } else {
        expect(outcome.reason.code).toBe('ERR_BLOCK_MISSING')
        expect(await h.pins.get(dag.root)).toBeUndefined()
      }
    }
    const verified = await collect(h.pins.verify())
    expect(verified).toHaveLength(kept)
    expect(verified.every(r => r.ok)).toBe(true)
    console.log(`racing pins: ${kept} of ${dags.length} won the race against the sweep`)
  })
})
