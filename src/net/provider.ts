import PQueue from 'p-queue'
import { CID } from 'multiformats/cid'
import { ProvideFailedError, ProviderStoppedError } from './errors.ts'
import type { AbortOptions } from 'abort-error'
import type { AbstractLevel, AbstractSublevel } from 'abstract-level'
import type { Pin, PinManager } from '../pinning/types.ts'
import type { RepoBlockstore } from '../store/types.ts'

export type ProvideStrategy = 'roots' | 'pinned' | 'all'

/** One DHT (or other content router) the node announces to. */
export interface ProvideRouter {
  name: string
  provide(cid: CID, options?: AbortOptions): Promise<void>
  /** Stop the router's own re-announcing of a CID (kad-dht keeps a reprovider of its own). */
  cancelReprovide?(cid: CID, options?: AbortOptions): Promise<void>
}

export interface ProviderComponents {
  /** Where the schedule lives (a `provide` sublevel is made in it). */
  db: AbstractLevel<any, string, any>
  routers: ProvideRouter[]
  pins: Pick<PinManager, 'ls' | 'reachable'>
  blockstore: Pick<RepoBlockstore, 'cids'>
  /**
   * libp2p's events: failed announcements are tried again shortly after a peer is identified
   * (kad-dht puts a peer in its routing table once identify shows it speaks the DHT).
   */
  events?: Pick<EventTarget, 'addEventListener' | 'removeEventListener'>
}

export interface ProviderInit {
  strategy?: ProvideStrategy
  /** Re-announce everything the strategy covers this often. Default 22 h (records live 48 h). */
  intervalMs?: number
  /** Wait before the first pass after a start when no pass ran within the interval. Default 1 min. */
  initialDelayMs?: number
  /** Announcements in flight at once. Default 8. */
  concurrency?: number
  /** Give up on one announcement after this long. Default 2 min. */
  provideTimeoutMs?: number
  /**
   * An announcement that reached no router is tried again this long after it failed (and shortly
   * after a peer is identified, with `events`), not only at the next full pass. Default 5 min.
   */
  retryMs?: number
  /** Wait after a peer is identified before failed announcements are tried again. Default 1 s. */
  peerRetryDelayMs?: number
}

export interface ProvideStat {
  strategy: ProvideStrategy
  intervalMs: number
  /** CIDs on the schedule. */
  total: number
  /** Start of the last full pass (ms since the epoch), if any. */
  lastRun?: number
  nextRun?: number
  /** Announcements that reached at least one router, and ones that reached none, since start. */
  announced: number
  failed: number
  /** CIDs whose last announcement reached no router, waiting to be tried again. */
  retrying: number
  /** Latest successful announcements, newest first. */
  recent: Array<{ cid: string, at: number }>
}

export interface Provider {
  start(): Promise<void>
  stop(): Promise<void>
  /** Announce what a new pin holds, as the strategy says; returns at once. */
  onPinned(pin: Pin, blocks: CID[]): void
  /** Take an unpinned root off the schedule; returns at once. */
  onUnpinned(pin: Pin): void
  /** Announce one CID now and put it on the schedule; resolves when every router answered. */
  provide(cid: CID, options?: AbortOptions): Promise<boolean>
  /** One full pass now: announce everything the strategy covers and drop the rest from the schedule. */
  run(options?: AbortOptions): Promise<void>
  /** CIDs on the schedule with the time each was last announced. */
  schedule(options?: AbortOptions): AsyncGenerator<{ cid: CID, at: number }>
  stat(): Promise<ProvideStat>
}

const DEFAULT_INTERVAL = 22 * 3_600_000
const DEFAULT_TIMEOUT = 120_000
const RECENT = 20
const DEFAULT_RETRY = 5 * 60_000
/** Failed CIDs remembered for a retry at most; past it they wait for the next full pass. */
const MAX_RETRYING = 10_000
/** setTimeout's ceiling; longer waits are taken in steps. */
const MAX_TIMER = 2 ** 31 - 1
const LAST_RUN = 'lastRun'

interface Entry { at: number }

/**
 * Announces what the node pins and re-announces it on a schedule. The schedule (CID → when it
 * was last announced) is in LevelDB so a restart knows when the next pass is due; pins are the
 * source of truth for what belongs on it, so a full pass also drops what no longer does.
 */
export function createProvider (components: ProviderComponents, init: ProviderInit = {}): Provider {
  const strategy = init.strategy ?? 'roots'
  const intervalMs = init.intervalMs ?? DEFAULT_INTERVAL
  const timeoutMs = init.provideTimeoutMs ?? DEFAULT_TIMEOUT
  const schedule: AbstractSublevel<any, any, string, Entry> = components.db.sublevel<string, Entry>('provide', { valueEncoding: 'json' })
  const meta: AbstractSublevel<any, any, string, number> = components.db.sublevel<string, number>('provide-meta', { valueEncoding: 'json' })

  let running = false
  let controller = new AbortController()
  let queue = new PQueue({ concurrency: init.concurrency ?? 8 })
  let timer: ReturnType<typeof setTimeout> | undefined
  let nextRun: number | undefined
  let lastRun: number | undefined
  let runInFlight: Promise<void> | undefined
  let announced = 0
  let failed = 0
  const recent: Array<{ cid: string, at: number }> = []
  // unpinned while an announcement of it was queued or in flight: its result must not reschedule it
  const withdrawn = new Set<string>()
  // announced to no router last time: tried again after retryMs or after a new peer
  const retrying = new Map<string, CID>()
  let retryTimer: ReturnType<typeof setTimeout> | undefined
  const retryMs = init.retryMs ?? DEFAULT_RETRY

  function retryFailed (): void {
    if (!running) return
    clearTimeout(retryTimer)
    retryTimer = undefined
    // taken off the map as they are queued; a second failure puts them back (and arms the timer)
    const due = [...retrying.values()]
    retrying.clear()
    for (const cid of due) void enqueue(cid)
  }

  let peerRetry: ReturnType<typeof setTimeout> | undefined
  const onPeer = (): void => {
    // one retry for a burst of new peers (a box that just came up meets several at once)
    if (!running || retrying.size === 0 || peerRetry != null) return
    peerRetry = setTimeout(() => {
      peerRetry = undefined
      retryFailed()
    }, init.peerRetryDelayMs ?? 1000)
    peerRetry.unref?.()
  }

  function retryLater (cid: CID): void {
    const key = cid.toString()
    // unpinned while it was tried: nothing to retry, and nothing left to withdraw
    if (withdrawn.delete(key)) return
    if (!running || (retrying.size >= MAX_RETRYING && !retrying.has(key))) return
    retrying.set(key, cid)
    if (retryTimer != null) return
    retryTimer = setTimeout(retryFailed, retryMs)
    retryTimer.unref?.()
  }

  async function announce (cid: CID, options?: AbortOptions): Promise<boolean> {
    const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(timeoutMs), ...(options?.signal == null ? [] : [options.signal])])
    const attempts = components.routers.map(async r => { await r.provide(cid, { signal }) })
    // one router taking the record is an announcement; a slow one (the Amino DHT with no
    // reachable servers waits out its timeout) finishes in the background, bounded by `signal`
    const ok = await Promise.any(attempts).then(() => true, () => false)
    for (const attempt of attempts) attempt.catch(() => {})
    const key = cid.toString()
    if (!ok) {
      failed++
      retryLater(cid)
      return false
    }
    announced++
    const at = Date.now()
    recent.unshift({ cid: key, at })
    recent.length = Math.min(recent.length, RECENT)
    if (withdrawn.has(key)) {
      withdrawn.delete(key)
    } else if (running) {
      await schedule.put(key, { at })
    }
    return true
  }

  function enqueue (cid: CID): Promise<boolean> {
    withdrawn.delete(cid.toString())
    const q = queue
    return q.add(async () => await announce(cid)).then(ok => ok === true, () => false)
  }

  async function * covered (options?: AbortOptions): AsyncGenerator<CID> {
    if (strategy === 'all') {
      yield * components.blockstore.cids(options)
    } else if (strategy === 'pinned') {
      yield * components.pins.reachable(options)
    } else {
      for await (const p of components.pins.ls({ ...options, type: 'recursive' })) yield p.cid
      for await (const p of components.pins.ls({ ...options, type: 'direct' })) yield p.cid
    }
  }

  async function cancelReprovide (cid: CID): Promise<void> {
    await Promise.allSettled(components.routers.map(async r => { await r.cancelReprovide?.(cid) }))
  }

  async function fullPass (options?: AbortOptions): Promise<void> {
    const signal = options?.signal == null ? controller.signal : AbortSignal.any([options.signal, controller.signal])
    const started = Date.now()
    lastRun = started
    await meta.put(LAST_RUN, started)
    const wanted = new Set<string>()
    const jobs: Array<Promise<boolean>> = []
    for await (const cid of covered({ signal })) {
      const key = cid.toString()
      if (wanted.has(key)) continue
      wanted.add(key)
      jobs.push(enqueue(cid))
      // keep memory flat on a large store: let the queue drain before reading further
      if (queue.size > 1000) await queue.onSizeLessThan(100)
    }
    await Promise.all(jobs)
    for await (const key of schedule.keys()) {
      signal.throwIfAborted()
      if (wanted.has(key)) continue
      await schedule.del(key)
      await cancelReprovide(CID.parse(key))
    }
  }

  function arm (at: number): void {
    if (!running) return
    clearTimeout(timer)
    nextRun = at
    const delay = Math.min(MAX_TIMER, Math.max(0, at - Date.now()))
    timer = setTimeout(() => {
      if (Date.now() < at) {
        arm(at)
        return
      }
      runInFlight = fullPass().catch(() => {}).finally(() => {
        runInFlight = undefined
        arm(Date.now() + intervalMs)
      })
    }, delay)
    timer.unref?.()
  }

  return {
    async start () {
      if (running) return
      running = true
      controller = new AbortController()
      queue = new PQueue({ concurrency: init.concurrency ?? 8 })
      components.events?.addEventListener('peer:identify', onPeer)
      lastRun = await meta.get(LAST_RUN)
      const due = lastRun == null ? 0 : lastRun + intervalMs
      arm(Math.max(due, Date.now() + (init.initialDelayMs ?? 60_000)))
    },

    async stop () {
      if (!running) return
      running = false
      clearTimeout(timer)
      timer = undefined
      clearTimeout(retryTimer)
      retryTimer = undefined
      clearTimeout(peerRetry)
      peerRetry = undefined
      components.events?.removeEventListener('peer:identify', onPeer)
      retrying.clear()
      nextRun = undefined
      controller.abort(new ProviderStoppedError())
      queue.clear()
      await queue.onIdle()
      await runInFlight
    },

    onPinned (pin, blocks) {
      if (!running) return
      const cids = strategy === 'roots' ? [pin.cid] : blocks
      for (const cid of cids) void enqueue(cid)
    },

    onUnpinned (pin) {
      if (!running) return
      const key = pin.cid.toString()
      withdrawn.add(key)
      retrying.delete(key)
      // blocks the pin shared with no other pin leave the schedule at the next full pass
      void schedule.del(key).catch(() => {}).then(async () => { await cancelReprovide(pin.cid) })
    },

    async provide (cid, options) {
      if (!running) throw new ProviderStoppedError()
      withdrawn.delete(cid.toString())
      return await queue.add(async () => await announce(cid, options)) === true
    },

    async run (options) {
      if (!running) throw new ProviderStoppedError()
      await fullPass(options)
      arm(Date.now() + intervalMs)
    },

    async * schedule (options) {
      for await (const [key, entry] of schedule.iterator()) {
        options?.signal?.throwIfAborted()
        yield { cid: CID.parse(key), at: entry.at }
      }
    },

    async stat () {
      let total = 0
      for await (const _ of schedule.keys()) total++
      return {
        strategy,
        intervalMs,
        total,
        ...(lastRun == null ? {} : { lastRun }),
        ...(nextRun == null ? {} : { nextRun }),
        announced,
        failed,
        retrying: retrying.size,
        recent: [...recent]
      }
    }
  }
}

/** A kad-dht service as a `ProvideRouter`: its `provide` is a query whose events are drained. */
export function dhtRouter (name: string, dht: {
  provide(cid: CID, options?: AbortOptions): AsyncIterable<unknown>
  cancelReprovide(cid: CID, options?: AbortOptions): Promise<void>
}): ProvideRouter {
  return {
    name,
    async provide (cid, options) {
      // kad-dht also stores the record locally and ends quietly when no peer took it: that is
      // not an announcement anyone can find
      let reached = 0
      for await (const event of dht.provide(cid, options)) {
        if ((event as { name?: string }).name === 'PEER_RESPONSE') reached++
      }
      if (reached === 0) throw new ProvideFailedError(`no ${name} DHT peer took the provider record for ${cid.toString()}`)
    },
    async cancelReprovide (cid, options) {
      await dht.cancelReprovide(cid, options)
    }
  }
}
