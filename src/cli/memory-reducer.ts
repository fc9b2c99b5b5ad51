/**
 * Gives memory back once a burst of work is over. V8 sizes its heap limit from what the last full
 * GC kept alive and keeps freed pages pooled for reuse, and a daemon that has gone quiet allocates
 * too little to trigger another full GC: after replicating 10,000 pins a daemon sat at ~240 MiB,
 * and the next transfer started from there (peaks of ~300 MiB against ~210 MiB from a fresh
 * start). Chrome has a "memory reducer" for this; Node does not tell V8 when it is idle.
 *
 * Every `intervalMs` this looks at the event loop's utilization over the last interval and at
 * RSS: a quiet loop with RSS well above the level after the last collection gets one compacting
 * collection (V8's last-resort kind, which also releases its page pool). A busy daemon is left
 * alone: the pause (tens of ms) only lands when nothing is waiting.
 *
 * With a `trim` (glibc's malloc_trim, src/cli/malloc-trim.ts) it also hands back the C heap's free
 * pages: after every collection, and on its own when a quiet loop's RSS has crept `trimGrowthBytes` (1 MiB)
 * above the level after the last trim (freed buffers and compiler memory that glibc keeps).
 */
import type { EventLoopUtilization } from 'node:perf_hooks'

export interface MemoryReducerComponents {
  /** A full, compacting, synchronous collection. */
  gc(): void
  /** Gives the C heap's free pages back to the kernel; a few ms. */
  trim?(): void
  rss(): number
  /** `performance.eventLoopUtilization`, which diffs two readings when given them. */
  utilization(current?: EventLoopUtilization, previous?: EventLoopUtilization): EventLoopUtilization
}

export interface MemoryReducerInit {
  intervalMs?: number
  /** The loop counts as quiet below this share of busy time over one interval. */
  quietBelow?: number
  /** Collect only when RSS has grown this much above its level after the last collection. */
  growthBytes?: number
  /** Trim (without a collection) when RSS has grown this much above its level after the last trim. */
  trimGrowthBytes?: number
}

export interface MemoryReducer {
  start(): void
  stop(): void
  /** One check now, as the timer makes it; true when it collected. */
  check(): boolean
  /** Collections so far. */
  readonly collections: number
  /** Trims so far, with or without a collection. */
  readonly trims: number
}

export function createMemoryReducer (components: MemoryReducerComponents, init: MemoryReducerInit = {}): MemoryReducer {
  const intervalMs = init.intervalMs ?? 1000
  const quietBelow = init.quietBelow ?? 0.1
  const growthBytes = init.growthBytes ?? 32 * 1024 * 1024
  const trimGrowthBytes = init.trimGrowthBytes ?? 1024 * 1024
  let timer: ReturnType<typeof setInterval> | undefined
  let last = components.utilization()
  let baseline = components.rss()
  let trimBaseline = baseline
  let collections = 0
  let trims = 0

  const trim = (): void => {
    if (components.trim == null) return
    components.trim()
    trims++
  }

  /** True when it collected; a trim alone returns false. */
  function check (): boolean {
    const now = components.utilization()
    const busy = components.utilization(now, last).utilization
    last = now
    const rss = components.rss()
    baseline = Math.min(baseline, rss)
    trimBaseline = Math.min(trimBaseline, rss)
    if (busy >= quietBelow) return false
    if (rss < baseline + growthBytes) {
      if (components.trim != null && rss >= trimBaseline + trimGrowthBytes) {
        trim()
        trimBaseline = components.rss()
        last = components.utilization()
      }
      return false
    }
    components.gc()
    collections++
    trim()
    baseline = trimBaseline = components.rss()
    // the collection's own time is not the daemon's work
    last = components.utilization()
    return true
  }

  return {
    get collections () {
      return collections
    },
    get trims () {
      return trims
    },
    start () {
      if (timer != null) return
      last = components.utilization()
      baseline = components.rss()
      timer = setInterval(check, intervalMs)
      timer.unref()
    },
    stop () {
      clearInterval(timer)
      timer = undefined
    },
    check
  }
}
