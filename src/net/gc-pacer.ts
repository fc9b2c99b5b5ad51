import { constants, PerformanceObserver, performance } from 'node:perf_hooks'
import type { PerformanceEntry } from 'node:perf_hooks'

/**
 * Runs a young-generation collection after every few MiB of network traffic.
 *
 * Why: every socket read and every noise frame sealed or opened is a new buffer outside V8's heap,
 * while the JS objects around them are small, so a transfer fills the young generation slowly and
 * its dead buffers wait for the next full collection. With V8's marking triggers set late (so a
 * transfer is not marked through again every ~15 MB, src/cli/daemon-runtime.ts) those dead buffers
 * piled up to V8's 64 MB external-memory limit on each side: a replicating pair peaked at 247 and
 * 256 MiB. A scavenge every 4 MiB freed the ones that died young for ~1 ms each; with the receiver
 * copying blocks out of the received frames at once (src/pinning/pool/transfer.ts) the same
 * benchmark peaked at 238 and 195 MiB (bench/results.md). Every 8 MiB halves those pauses (a
 * scavenge per 4 MiB was ~7 % of a receiver's main thread) at about the same peaks.
 *
 * A due collection is skipped when V8 has run one of its own since the pacer last looked: a
 * buffer still in flight at two scavenges in a row is promoted to the old generation, where it
 * dies as external memory that V8 counts against the old generation's limit until a full
 * collection. A receiver allocates enough on its own heap that V8 scavenges about as often as the
 * pacer, and the pacer's collection often came 1-6 ms after V8's (`--trace-gc`): each such pair
 * promoted what the stream had in flight, and the receiver ran 3-5 atomic full collections per
 * 256 MiB replicated.
 *
 * `note()` is called on the hot path (once per noise frame), so it only counts; the collection
 * itself runs from `setImmediate`, off any caller's stack, and never more than one is pending.
 */
export interface GcPacerComponents {
  /** A young-generation collection (V8's `gc({ type: 'minor' })`). */
  minorGc(): void
  /**
   * Whether V8 collected the young generation by itself (not through `minorGc`) after `at`, a
   * `performance.now()` time (`createGcObserver`). Without it every due collection runs.
   */
  collectedSince?(at: number): boolean
}

export interface GcPacerInit {
  /** Bytes of traffic between two collections. Default 8 MiB. */
  everyBytes?: number
}

export interface GcPacer {
  /** Counts `bytes` moved; schedules a collection once `everyBytes` have been counted since the last. */
  note(bytes: number): void
  /** Collections run so far. */
  readonly collections: number
  /** Due collections skipped because V8 had collected since the last check. */
  readonly skipped: number
  /** Cancels a scheduled collection; later `note` calls schedule again. */
  stop(): void
}

export function createGcPacer (components: GcPacerComponents, init: GcPacerInit = {}): GcPacer {
  const everyBytes = init.everyBytes ?? 8 * 1024 * 1024
  let counted = 0
  let pending: ReturnType<typeof setImmediate> | undefined
  let collections = 0
  let skipped = 0
  let lastCheck = performance.now()

  const collect = (): void => {
    pending = undefined
    counted = 0
    const since = lastCheck
    lastCheck = performance.now()
    if (components.collectedSince?.(since) === true) {
      skipped++
      return
    }
    collections++
    components.minorGc()
  }

  return {
    note (bytes) {
      counted += bytes
      if (counted < everyBytes || pending != null) return
      pending = setImmediate(collect)
    },
    get collections () {
      return collections
    },
    get skipped () {
      return skipped
    },
    stop () {
      if (pending != null) clearImmediate(pending)
      pending = undefined
    }
  }
}

export interface GcObserver {
  /** Whether V8 ran a young or full collection it was not asked for (a `gc()` call) after `at`, a `performance.now()` time. */
  collectedSince(at: number): boolean
  stop(): void
}

/**
 * Watches V8's collections through Node's `gc` performance entries. Node delivers them from an
 * immediate, after the pacer's own immediate of the same turn, so `collectedSince` first takes the
 * entries still waiting in the observer's buffer: those of a collection earlier in this turn are
 * already there. A collection asked for with `gc()` (the pacer's own, flagged forced) is not counted.
 */
export function createGcObserver (): GcObserver {
  let lastEnd = -Infinity
  const take = (entries: PerformanceEntry[]): void => {
    for (const entry of entries) {
      const detail = (entry as PerformanceEntry & { detail?: { kind?: number, flags?: number } }).detail
      if (detail?.kind == null || ((detail.flags ?? 0) & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED) !== 0) continue
      lastEnd = Math.max(lastEnd, entry.startTime + entry.duration)
    }
  }
  const observer = new PerformanceObserver(list => { take(list.getEntries()) })
  observer.observe({ entryTypes: ['gc'] })
  return {
    collectedSince (at) {
      take(observer.takeRecords())
      return lastEnd > at
    },
    stop () {
      observer.disconnect()
    }
  }
}
