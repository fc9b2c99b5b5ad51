import { describe, expect, it } from 'vitest'
import { performance } from 'node:perf_hooks'
import { createMemoryReducer } from '../../src/cli/memory-reducer.ts'
import type { EventLoopUtilization } from 'node:perf_hooks'

const MiB = 1024 * 1024

/** Readings the test sets by hand: busy share of the next interval and the RSS. */
function readings (): { busy: number, rss: number, gcs: number, trims: number, trimFrees: number, components: Parameters<typeof createMemoryReducer>[0] } {
  const state = { busy: 0, rss: 100 * MiB, gcs: 0, trims: 0, trimFrees: 0, components: undefined as unknown as Parameters<typeof createMemoryReducer>[0] }
  let clock = 0
  state.components = {
    gc: () => { state.gcs++ },
    trim: () => { state.trims++; state.rss -= state.trimFrees },
    rss: () => state.rss,
    utilization: (current?: EventLoopUtilization, previous?: EventLoopUtilization): EventLoopUtilization => {
      if (current != null && previous != null) {
        const active = current.active - previous.active
        const idle = current.idle - previous.idle
        return { active, idle, utilization: active / (active + idle) }
      }
      clock += 1000
      return { active: clock * state.busy, idle: clock * (1 - state.busy), utilization: state.busy }
    }
  }
  return state
}

describe('memory reducer', () => {
  it('collects once when the loop is quiet and RSS has grown, never while busy', () => {
    const s = readings()
    const reducer = createMemoryReducer(s.components, { growthBytes: 32 * MiB, quietBelow: 0.1 })

    s.rss = 120 * MiB
    expect(reducer.check()).toBe(false) // quiet, but grown only 20 MiB

    s.rss = 200 * MiB
    s.busy = 0.8
    expect(reducer.check()).toBe(false) // grown, but busy
    expect(s.gcs).toBe(0)

    s.busy = 0.01
    expect(reducer.check()).toBe(true)
    expect(s.gcs).toBe(1)

    // the collection freed little: the new level is the baseline, so no collection loop
    s.rss = 190 * MiB
    expect(reducer.check()).toBe(false)
    expect(reducer.collections).toBe(1)
  })

  it('trims the C heap after every collection, and alone when a quiet loop crept 2 MiB above the last trim', () => {
    const s = readings()
    const reducer = createMemoryReducer(s.components, { growthBytes: 32 * MiB, trimGrowthBytes: 2 * MiB })

    s.rss = 101 * MiB
    expect(reducer.check()).toBe(false)
    expect(s.trims).toBe(0) // 1 MiB of creep: nothing

    s.rss = 103 * MiB
    s.busy = 0.5
    expect(reducer.check()).toBe(false)
    expect(s.trims).toBe(0) // busy: nothing

    s.busy = 0
    s.trimFrees = 2 * MiB
    expect(reducer.check()).toBe(false) // a trim is not a collection
    expect(s.trims).toBe(1)
    expect(s.gcs).toBe(0)
    // measured again after the trim: 101 MiB is the new level, so no trim loop
    expect(reducer.check()).toBe(false)
    expect(s.trims).toBe(1)

    s.rss = 140 * MiB
    expect(reducer.check()).toBe(true)
    expect([s.gcs, s.trims, reducer.collections, reducer.trims]).toEqual([1, 2, 1, 2])
  })

  it('without a trim (not glibc) only collects', () => {
    const s = readings()
    const { trim, ...noTrim } = s.components
    void trim
    const reducer = createMemoryReducer(noTrim, { growthBytes: 32 * MiB })
    s.rss = 110 * MiB
    expect(reducer.check()).toBe(false)
    s.rss = 140 * MiB
    expect(reducer.check()).toBe(true)
    expect([s.gcs, s.trims, reducer.trims]).toEqual([1, 0, 0])
  })

  it('measures growth from the lowest level seen', () => {
    const s = readings()
    const reducer = createMemoryReducer(s.components, { growthBytes: 32 * MiB })
    s.rss = 60 * MiB
    expect(reducer.check()).toBe(false)
    s.rss = 95 * MiB // 35 MiB above the 60 MiB seen, though below the 100 MiB it started at
    expect(reducer.check()).toBe(true)
  })

  it('with the real readings: collects once the loop goes quiet after RSS grew', async () => {
    let collections = 0
    const reducer = createMemoryReducer({
      gc: () => { collections++ },
      rss: () => process.memoryUsage.rss(),
      utilization: performance.eventLoopUtilization.bind(performance)
    }, { intervalMs: 100, growthBytes: 16 * MiB })
    reducer.start()
    try {
      // 48 MiB of touched pages: real RSS growth
      const held = Buffer.alloc(48 * MiB, 1)
      for (let waited = 0; collections === 0 && waited < 10_000; waited += 50) {
        await new Promise(resolve => setTimeout(resolve, 50))
      }
      expect(held.byteLength).toBe(48 * MiB)
      expect(collections).toBe(1)
      expect(reducer.collections).toBe(1)
    } finally {
      reducer.stop()
    }
  })
})
