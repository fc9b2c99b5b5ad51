import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createGc } from '../../src/store/gc.ts'
import { createHarness, makeDag, pbNode } from './utils.ts'
import type { Harness } from './utils.ts'
import type { CID } from 'multiformats/cid'

const PINS = 10_000
const BLOCKS_PER_PIN = 50

async function mapConcurrent<T> (items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) await fn(items[next++] as T)
  }))
}

describe('pin manager at scale', () => {
  let h: Harness
  let roots: CID[]
  // block reads through the pin manager: marking and listing must come from LevelDB alone
  let reads = 0

  beforeAll(async () => {
    // Durability is proven in pin-manager.spec.ts; here only the mark phase is measured, so the
    // 10k adds skip the fsyncs and read the walked blocks through a cache over the real store.
    const cache = new Map<string, Uint8Array>()
    reads = 0
    h = await createHarness({}, {
      wrapDb: (db) => new Proxy(db, {
        get (target, prop) {
          if (prop === 'batch') return async (ops: any) => { await target.batch(ops) }
          const value = Reflect.get(target, prop, target)
          return typeof value === 'function' ? value.bind(target) : value
        }
      }),
      wrapBlockstore: (store) => ({
        async * get (cid, options) {
          reads++
          const key = cid.toString()
          let bytes = cache.get(key)
          if (bytes == null) {
            const parts: Uint8Array[] = []
            for await (const part of store.get(cid, options)) parts.push(part)
            bytes = Buffer.concat(parts)
            cache.set(key, bytes)
          }
          yield bytes
        },
        has: async (cid, options) => await store.has(cid, options),
        sync: async () => {}
      })
    })
    // 49 leaves shared by every pin keep the store small; each pin still lists 50 blocks.
    const shared = await makeDag(h.blockstore, 'shared', BLOCKS_PER_PIN - 1)
    const leaves = shared.blocks.slice(1)
    roots = new Array(PINS)
    await mapConcurrent([...roots.keys()], 16, async (i) => {
      roots[i] = (await pbNode(h.blockstore, leaves, new TextEncoder().encode(`root ${i}`))).cid
    })
    const started = performance.now()
    await mapConcurrent(roots, 32, async (root) => { await h.pins.add(root) })
    console.log(`added ${PINS} pins of ${BLOCKS_PER_PIN} blocks in ${Math.round(performance.now() - started)} ms`)
  }, 120_000)

  afterAll(async () => {
    await h?.close()
  })

  it(`marks ${PINS * BLOCKS_PER_PIN} pinned blocks from LevelDB without reading a block`, async () => {
    let started = performance.now()
    let n = 0
    const readsBefore = reads
    for await (const _cid of h.pins.reachable()) n++
    expect(reads).toBe(readsBefore)
    const ms = performance.now() - started
    expect(n).toBe(PINS * BLOCKS_PER_PIN)

    // the whole GC: mark from LevelDB, then list the 10,050 block files
    const gc = createGc({ blockstore: h.blockstore, leases: h.leases, reachable: (options) => h.pins.reachable(options) })
    started = performance.now()
    const result = await gc.run()
    const gcMs = performance.now() - started
    console.log(`reachable(): ${n} CIDs in ${Math.round(ms)} ms; gc.run() over ${PINS} pins: ${Math.round(gcMs)} ms, removed ${result.removed}`)
    // only the shared leaves' own (unpinned) root goes
    expect(result.removed).toBe(1)
  })

  it('lists indirect pins and finds a pin by CID without re-walking DAGs', async () => {
    let started = performance.now()
    let n = 0
    const readsBefore = reads
    for await (const _p of h.pins.ls({ type: 'indirect' })) n++
    const lsMs = performance.now() - started
    expect(n).toBe(BLOCKS_PER_PIN - 1)

    started = performance.now()
    const listed = []
    for await (const p of h.pins.ls({ cids: [roots[1234] as CID] })) listed.push(p)
    expect(listed).toMatchObject([{ type: 'recursive' }])
    const getMs = performance.now() - started
    console.log(`ls --type indirect: ${Math.round(lsMs)} ms; ls one CID: ${getMs.toFixed(1)} ms`)
    expect(reads).toBe(readsBefore)
  })
})
