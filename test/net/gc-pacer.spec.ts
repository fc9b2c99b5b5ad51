import { describe, expect, it } from 'vitest'
import { performance } from 'node:perf_hooks'
import { createGcObserver, createGcPacer } from '../../src/net/gc-pacer.ts'
import type { GcPacer } from '../../src/net/gc-pacer.ts'

const turn = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }
/** Counts 999 bytes (nothing runs), then 1 more (one collection runs), for a pacer due every 1000. */
async function expectDueAt1000 (pacer: GcPacer, runs: () => number): Promise<void> {
  const before = runs()
  pacer.note(999)
  await turn()
  expect(runs()).toBe(before)
  pacer.note(1)
  await turn()
  expect(runs()).toBe(before + 1)
}
/** What `fn` returns when called from an immediate, where the pacer calls it. */
const fromImmediate = async <T>(fn: () => T): Promise<T> => await new Promise(resolve => setImmediate(() => { resolve(fn()) }))

describe('GC pacer', () => {
  it('collects once per `everyBytes` counted, off the caller\'s stack, never two pending', async () => {
    let runs = 0
    const pacer = createGcPacer({ minorGc: () => { runs++ } }, { everyBytes: 1000 })
    pacer.note(999)
    await turn()
    expect(runs).toBe(0)
    pacer.note(1)
    // scheduled, not run inside note(): the caller (a cipher) may still hold buffers on its stack
    expect(runs).toBe(0)
    pacer.note(5000)
    await turn()
    expect(runs).toBe(1)
    expect(pacer.collections).toBe(1)
    // the count starts again after a collection
    await expectDueAt1000(pacer, () => runs)
    expect(runs).toBe(2)
  })

  it('skips a due collection when V8 collected by itself since the last check, and counts again from there', async () => {
    let runs = 0
    const asked: number[] = []
    let foreign = false
    const pacer = createGcPacer({
      minorGc: () => { runs++ },
      collectedSince: (at) => { asked.push(at); return foreign }
    }, { everyBytes: 1000 })
    foreign = true
    pacer.note(1000)
    await turn()
    expect(runs).toBe(0)
    expect(pacer.skipped).toBe(1)
    foreign = false
    await expectDueAt1000(pacer, () => runs)
    expect(pacer.collections).toBe(1)
    // each check asks about the time since the one before
    expect(asked.length).toBe(2)
    expect(asked[1]).toBeGreaterThan(asked[0] as number)
  })

  it('observes V8\'s own collections but not the ones asked for with gc()', async () => {
    const { setFlagsFromString } = await import('node:v8')
    const { runInNewContext } = await import('node:vm')
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as (o: { type: 'minor' | 'major' }) => void
    const observer = createGcObserver()
    try {
      await turn()
      const before = performance.now()
      gc({ type: 'minor' })
      // the pacer's own collection: filed by the next immediate, and not counted
      expect(await fromImmediate(() => observer.collectedSince(before))).toBe(false)
      // enough short-lived objects to fill the young generation several times over (kept in a ring,
      // so the optimizer cannot leave them unallocated)
      const ring: number[][] = new Array(1024)
      for (let i = 0; i < 2_000_000; i++) ring[i & 1023] = [i, i + 1]
      expect(ring.length).toBe(1024)
      // the pacer looks from an immediate: by then Node has filed the entries (from its own
      // immediate, which runs first), though the observer's callback only gets them a turn later
      expect(await fromImmediate(() => observer.collectedSince(before))).toBe(true)
      expect(observer.collectedSince(performance.now())).toBe(false)
    } finally {
      observer.stop()
    }
  })

  it('stop() cancels a scheduled collection', async () => {
    let runs = 0
    const pacer = createGcPacer({ minorGc: () => { runs++ } }, { everyBytes: 10 })
    pacer.note(10)
    pacer.stop()
    await turn()
    expect(runs).toBe(0)
  })

  it('frees dead buffers that a transfer would otherwise leave for a full collection', async () => {
    // what the daemon passes it (src/cli/commands/daemon.ts); here from --expose-gc set at run time
    const { setFlagsFromString } = await import('node:v8')
    const { runInNewContext } = await import('node:vm')
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as (o: { type: 'minor' | 'major' }) => void
    const pacer = createGcPacer({ minorGc: () => { gc({ type: 'minor' }) } }, { everyBytes: 4 * 1024 * 1024 })
    gc({ type: 'major' })
    await turn()
    const before = process.memoryUsage().arrayBuffers
    // 64 MiB of 64 KiB buffers, each dead as soon as it is counted (as a sealed noise frame once written)
    for (let i = 0; i < 1024; i++) {
      const frame = Buffer.allocUnsafe(65536)
      pacer.note(frame.byteLength)
      if (i % 16 === 15) await turn()
    }
    await turn()
    expect(pacer.collections).toBeGreaterThanOrEqual(15)
    // without the pacer all 64 MiB are still held here (nothing else allocates enough to collect them)
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(24 * 1024 * 1024)
  })
})
