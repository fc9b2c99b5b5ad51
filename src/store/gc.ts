import { setTimeout as sleep } from 'node:timers/promises'
import { DigestSet } from './digest-set.ts'
import type { BlockLeases, RepoBlockstore } from './types.ts'
import type { AbortOptions } from 'abort-error'
import type { CID } from 'multiformats/cid'

export interface GcComponents {
  /**
   * `remove` (bytes freed) is used when present, so the result can report freed bytes; `sync`,
   * when present, ends every run that removed blocks (see `createGc`).
   */
  blockstore: Pick<RepoBlockstore, 'cids' | 'delete'> & Partial<Pick<RepoBlockstore, 'sync'>> & { remove?(cid: CID, options?: AbortOptions): Promise<number> }
  leases: Pick<BlockLeases, 'beginGc' | 'endGc' | 'isProtected' | 'active'>
  /** Every CID referenced by a pin (the mark set). */
  reachable(options: AbortOptions): AsyncIterable<CID>
}

export interface GcInit {
  /** Deletes in flight during the sweep. */
  concurrency?: number
  /**
   * While a writer holds a lease the GC yields. First it stands aside entirely, for up to
   * `waitMs` in all per run: most adds and pins end within that. Past it, it works on with one
   * delete in flight and sleeps `pauseMs` after every `sliceMs` of work. An add shares the event
   * loop, the libuv pool (unlinks and block writes queue on the same 4 threads) and the disk's
   * journal, and it is the user's wait; the GC is not.
   * `false`: never yield (tests that race a writer against a full-speed sweep).
   */
  yield?: { waitMs?: number, sliceMs?: number, pauseMs?: number } | false
}

export interface GcResult {
  removed: number
  freedBytes: number
  durationMs: number
  /** Of durationMs, the mark phase (reading every pin's block list). */
  markMs: number
}

export interface Gc {
  /**
   * Mark and sweep. Only one run at a time: a call while a run is in progress shares that run's
   * result (and its signal) instead of starting another.
   */
  run(options?: AbortOptions): Promise<GcResult>
  readonly running: boolean
}

/** How often a GC standing aside looks whether the writers are done. */
const WAIT_STEP_MS = 10

/**
 * Adds are never stalled for the sweep: instead of a write lock, leases protect what writers
 * hold, and the check and the delete of each block happen in one synchronous turn. A writer's
 * `lease.add(cid)` then either lands before the check (the block is kept) or after the delete
 * was registered, in which case its `has()`/`put()` wait for that delete and write the block anew.
 *
 * A run that removed blocks ends with a sync pass of the store, so its deletions are durable when
 * it resolves and the store is clean again (no crash-recovery marker left set). Without it the
 * directories the sweep touched waited for the next writer's sync: a 256 MiB replica fetched after
 * a GC of the previous one made 440 directory fsyncs, for the 228 directories its own blocks went
 * to (strace, bench/replication.ts); 250 with this.
 */
export function createGc (components: GcComponents, init: GcInit = {}): Gc {
  const { blockstore, leases, reachable } = components
  const concurrency = init.concurrency ?? 32
  const yielding = init.yield !== false
  const { sliceMs = 5, pauseMs = 100, waitMs = 10_000 } = init.yield === false ? {} : init.yield ?? {}
  let current: Promise<GcResult> | undefined
  let sliceStart = 0
  let waitLeft = waitMs

  /** Resolves at once with no writer about; with one, waits it out or sleeps once the slice is used up. */
  async function yieldToWriters (): Promise<void> {
    while (yielding && leases.active > 0 && waitLeft > 0) {
      const before = performance.now()
      await sleep(WAIT_STEP_MS)
      waitLeft -= performance.now() - before
    }
    if (!yielding || leases.active === 0) {
      sliceStart = 0
      return
    }
    const now = performance.now()
    if (sliceStart === 0) sliceStart = now
    if (now - sliceStart < sliceMs) return
    await sleep(pauseMs)
    sliceStart = performance.now()
  }

  const limit = (): number => yielding && leases.active > 0 ? 1 : concurrency

  /** The multihashes every pin reaches. */
  async function markReachable (options: AbortOptions): Promise<DigestSet> {
    const mark = new DigestSet(1 << 16)
    let n = 0
    for await (const cid of reachable(options)) {
      mark.add(cid.multihash.bytes)
      if ((++n & 63) === 0) await yieldToWriters()
    }
    return mark
  }

  async function sweep (options: AbortOptions): Promise<GcResult> {
    const started = Date.now()
    waitLeft = waitMs
    let removed = 0
    let freedBytes = 0
    let markMs: number | undefined
    leases.beginGc()
    const inflight = new Set<Promise<void>>()
    let failure: { err: unknown } | undefined
    try {
      await yieldToWriters()
      const mark = await markReachable(options)
      markMs = Date.now() - started
      let n = 0
      for await (const cid of blockstore.cids(options)) {
        options.signal?.throwIfAborted()
        // kept blocks cost time too (half of them, in a repo of pins): the slice counts them
        if ((++n & 63) === 0) await yieldToWriters()
        if (mark.has(cid.multihash.bytes) || leases.isProtected(cid)) continue
        // No await between the check above and this call: see the comment on createGc.
        const deleting = blockstore.remove != null
          ? blockstore.remove(cid, options).then(n => { if (n > 0) { removed++; freedBytes += n } })
          : Promise.resolve(blockstore.delete(cid, options)).then(() => { removed++ })
        const tracked: Promise<void> = deleting.catch((err: unknown) => { failure ??= { err } }).finally(() => { inflight.delete(tracked) })
        inflight.add(tracked)
        while (inflight.size >= limit()) await Promise.race(inflight)
        if (failure != null) break
        await yieldToWriters()
      }
    } finally {
      await Promise.all(inflight)
      leases.endGc()
    }
    if (failure != null) throw failure.err
    if (removed > 0) await blockstore.sync?.(options)
    return { removed, freedBytes, durationMs: Date.now() - started, markMs: markMs ?? 0 }
  }

  return {
    get running () {
      return current != null
    },
    run (options: AbortOptions = {}): Promise<GcResult> {
      current ??= sweep(options).finally(() => { current = undefined })
      return current
    }
  }
}

export interface AutoGcComponents {
  gc: Pick<Gc, 'run'>
  blockstore: Pick<RepoBlockstore, 'stat'>
}

export interface AutoGcInit {
  /** The quota (`storage.max`). */
  maxBytes: number
  /** Run GC when the store holds more than this percent of `maxBytes`. */
  watermarkPercent: number
  intervalMs: number
  onRun?(result: GcResult): void
  onError?(err: unknown): void
}

export interface AutoGc {
  start(): void
  stop(): Promise<void>
  /** Cheap: call after adds; runs GC soon if the store is over the watermark. */
  poke(): void
  /** Runs GC now if over the watermark; resolves with its result, or undefined if none was needed. */
  check(): Promise<GcResult | undefined>
  readonly status: 'started' | 'stopped'
}

export function createAutoGc (components: AutoGcComponents, init: AutoGcInit): AutoGc {
  const threshold = init.maxBytes * init.watermarkPercent / 100
  let status: 'started' | 'stopped' = 'stopped'
  let timer: ReturnType<typeof setInterval> | undefined
  let controller = new AbortController()
  let checking: Promise<GcResult | undefined> | undefined
  let pokeScheduled = false

  const over = (): boolean => components.blockstore.stat().bytes > threshold

  function check (): Promise<GcResult | undefined> {
    if (status !== 'started' || !over()) return checking ?? Promise.resolve(undefined)
    checking ??= components.gc.run({ signal: controller.signal })
      .then(result => {
        init.onRun?.(result)
        return result
      })
      .finally(() => { checking = undefined })
    return checking
  }

  function checkQuietly (): void {
    check().catch(err => {
      if (status === 'started') init.onError?.(err)
    })
  }

  return {
    get status () {
      return status
    },
    start () {
      if (status === 'started') return
      status = 'started'
      controller = new AbortController()
      timer = setInterval(checkQuietly, init.intervalMs)
      timer.unref?.()
    },
    async stop () {
      if (status === 'stopped') return
      status = 'stopped'
      clearInterval(timer)
      controller.abort()
      await checking?.catch(() => {})
    },
    poke () {
      if (status !== 'started' || pokeScheduled || checking != null || !over()) return
      pokeScheduled = true
      setImmediate(() => {
        pokeScheduled = false
        checkQuietly()
      })
    },
    check
  }
}
