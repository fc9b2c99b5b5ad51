import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { NotPinnedError, NotReplicatedError, PoolRequestRefusedError, ReplicationUnavailableError } from '../errors.ts'
import { MAX_CIDS_PER_REQUEST, verifyReceipt } from './messages.ts'
import { requestPins, requestRelease, requestStatus } from './pin-protocol.ts'
import { placementOrder } from './placement.ts'
import type { Placement } from './placement.ts'
import type { BufferPool } from '../../store/buffer-pool.ts'
import { fetchDag } from './transfer.ts'
import type { PinDb } from '../pin-manager.ts'
import type { RepairResult, ReplicaState, ReplicatedPin, ReplicationManager } from '../replication-types.ts'
import type { PinManager } from '../types.ts'
import type { BlockLeases, RepoBlockstore } from '../../store/types.ts'
import type { AbortOptions, Libp2p, PeerId } from '@libp2p/interface'
import type { AbstractSublevel } from 'abstract-level'

export interface ReplicationComponents {
  libp2p: Pick<Libp2p, 'dialProtocol'>
  pins: Pick<PinManager, 'add' | 'get' | 'rm' | 'verify'>
  blockstore: Pick<RepoBlockstore, 'put' | 'has' | 'delete'>
  leases: BlockLeases
  db: PinDb
  peerId: PeerId
  /** The pool's members (peer id strings), this node possibly among them. */
  members(): string[]
  /** Reusable buffers for the blocks a repair fetch receives (FetchDagComponents). */
  buffers?: BufferPool
}

export interface ReplicationInit {
  /** How often replica holders are asked whether they still hold their replicas. */
  healthIntervalMs?: number
  /** A holder unreachable this long has its replica moved to another member. */
  gracePeriodMs?: number
  /** Longest wait for one pin request (its transfer included). */
  requestTimeoutMs?: number
  /** Wait before asking an unreachable or busy member again. */
  retryMs?: number
  /** The order a pin's replicas are offered to members. Default: rendezvous hashing. */
  placement?: Placement
}

interface StoredReplica {
  peer: string
  state: ReplicaState
  since: number
  reason?: string
  receipt?: string
  unreachableSince?: number
}

interface StoredPin {
  cid: string
  name?: string
  meta?: Record<string, string>
  replicas: number
  created: number
  status: StoredReplica[]
}

const ACTIVE: ReadonlySet<ReplicaState> = new Set(['queued', 'pinning', 'pinned'])

function toReplicatedPin (record: StoredPin): ReplicatedPin {
  const pin: ReplicatedPin = {
    cid: CID.parse(record.cid),
    replicas: record.replicas,
    created: record.created,
    status: record.status.map(s => {
      const out: ReplicatedPin['status'][number] = { peer: s.peer, state: s.state, since: s.since }
      if (s.reason != null) out.reason = s.reason
      if (s.receipt != null) out.receipt = s.receipt
      return out
    })
  }
  if (record.name != null) pin.name = record.name
  if (record.meta != null) pin.meta = record.meta
  return pin
}

function setState (entry: StoredReplica, state: ReplicaState, reason?: string): void {
  if (entry.state !== state) entry.since = Date.now()
  entry.state = state
  if (reason == null) delete entry.reason
  else entry.reason = reason
}

/**
 * The requester's side of pool replication. Every replicated pin is one LevelDB record holding
 * each replica's state; a round sends each member its queued CIDs in batches (one request and
 * one DAG stream per batch), a timer health-checks the holders, and a holder unreachable past
 * the grace period is replaced by another member. Records are also kept in memory: a few
 * hundred bytes each, and rounds must not rescan LevelDB.
 */
export function createReplicationManager (components: ReplicationComponents, init: ReplicationInit = {}): ReplicationManager {
  const { libp2p, pins, db } = components
  const self = components.peerId.toString()
  const healthIntervalMs = init.healthIntervalMs ?? 60_000
  const gracePeriodMs = init.gracePeriodMs ?? 10 * 60_000
  const requestTimeoutMs = init.requestTimeoutMs ?? 30 * 60_000
  const retryMs = init.retryMs ?? Math.min(5_000, healthIntervalMs)
  const placement = init.placement ?? placementOrder

  const recordsDb: AbstractSublevel<PinDb, any, string, StoredPin> = db.sublevel<string, StoredPin>('replicas', { valueEncoding: 'json' })
  // releases not yet delivered (the holder was unreachable): `${peer}!${cid}`
  const releasesDb: AbstractSublevel<PinDb, any, string, number> = db.sublevel<string, number>('replica-releases', { valueEncoding: 'json' })

  const records = new Map<string, StoredPin>()
  const busyPeers = new Set<string>()
  const retryAt = new Map<string, number>()
  const waiters = new Map<string, Array<() => void>>()
  let started = false
  let controller = new AbortController()
  let healthTimer: ReturnType<typeof setInterval> | undefined
  let roundTimer: ReturnType<typeof setTimeout> | undefined
  let healthRunning = false

  const key = (cid: CID): string => cid.toString()

  async function save (list: StoredPin[]): Promise<void> {
    if (list.length === 0) return
    await db.batch(list.map(r => ({ type: 'put' as const, sublevel: recordsDb, key: r.cid, value: r })))
  }

  /** Members not holding or tried for this pin yet, in no particular order. */
  function unused (record: StoredPin): string[] {
    const used = new Set(record.status.map(s => s.peer))
    return components.members().filter(m => m !== self && !used.has(m))
  }

  function remotes (record: StoredPin): StoredReplica[] {
    return record.status.filter(s => s.peer !== self)
  }

  /** Queues replicas on new members until the wanted count is active (or no member is left). */
  function topUp (record: StoredPin): boolean {
    let changed = false
    let active = remotes(record).filter(s => ACTIVE.has(s.state)).length
    // the pin's own rendezvous order (placement.ts), computed only when a replica is to be placed
    const free = active < record.replicas - 1 ? placement(record.cid, unused(record)) : []
    while (active < record.replicas - 1 && free.length > 0) {
      const peer = free.shift() as string
      record.status.push({ peer, state: 'queued', since: Date.now() })
      active++
      changed = true
    }
    return changed
  }

  function isSettled (record: StoredPin): boolean {
    const rs = remotes(record)
    if (rs.some(s => s.state === 'queued' || s.state === 'pinning')) return false
    return rs.filter(s => s.state === 'pinned').length >= record.replicas - 1 || unused(record).length === 0
  }

  function notify (record: StoredPin): void {
    if (!isSettled(record)) return
    const list = waiters.get(record.cid)
    if (list == null) return
    waiters.delete(record.cid)
    for (const wake of list) wake()
  }

  function schedule (delayMs = 0): void {
    if (!started) return
    if (roundTimer != null) {
      if (delayMs > 0) return
      clearTimeout(roundTimer)
    }
    roundTimer = setTimeout(() => {
      roundTimer = undefined
      round()
    }, delayMs)
  }

  /** Sends every member with queued replicas (and no request in flight) one batch. */
  function round (): void {
    if (!started) return
    const now = Date.now()
    const byPeer = new Map<string, StoredPin[]>()
    let nextRetry = Infinity
    for (const record of records.values()) {
      for (const entry of remotes(record)) {
        if (entry.state !== 'queued') continue
        const at = retryAt.get(entry.peer) ?? 0
        if (at > now) {
          nextRetry = Math.min(nextRetry, at)
          continue
        }
        if (busyPeers.has(entry.peer)) continue
        const list = byPeer.get(entry.peer) ?? []
        if (list.length < MAX_CIDS_PER_REQUEST) list.push(record)
        byPeer.set(entry.peer, list)
      }
    }
    for (const [peer, list] of byPeer) {
      void sendBatch(peer, list)
    }
    if (nextRetry !== Infinity) schedule(Math.max(10, nextRetry - now))
  }

  function entryOf (record: StoredPin, peer: string): StoredReplica | undefined {
    return record.status.find(s => s.peer === peer)
  }

  /** The holder did not answer; past the grace period its replica goes to another member. */
  function markUnreachable (record: StoredPin, entry: StoredReplica, reason: string): void {
    const now = Date.now()
    entry.unreachableSince ??= now
    if (now - entry.unreachableSince >= gracePeriodMs) {
      setState(entry, 'failed', `unreachable: ${reason}`)
      topUp(record)
    } else if (entry.state === 'pinning') {
      setState(entry, 'queued', `unreachable: ${reason}`)
    }
  }

  async function sendBatch (peer: string, list: StoredPin[]): Promise<void> {
    busyPeers.add(peer)
    const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(requestTimeoutMs)])
    try {
      const items: Array<{ cid: CID, size: number }> = []
      const sent: StoredPin[] = []
      for (const record of list) {
        const local = await pins.get(CID.parse(record.cid))
        const entry = entryOf(record, peer)
        if (entry == null) continue
        if (local == null) {
          setState(entry, 'failed', 'not pinned locally')
          continue
        }
        setState(entry, 'pinning')
        items.push({ cid: CID.parse(record.cid), size: local.bytes })
        sent.push(record)
      }
      await save(list)
      if (items.length === 0) return
      let results: Awaited<ReturnType<typeof requestPins>> | undefined
      let failure: unknown
      try {
        results = await requestPins({ libp2p }, peerIdFromString(peer), items, { signal })
      } catch (err) {
        failure = err
      }
      if (!started) return
      const orphans: CID[] = []
      for (let i = 0; i < sent.length; i++) {
        const record = sent[i] as StoredPin
        const current = records.get(record.cid)
        const result = results?.[i]
        if (current !== record) {
          // removed while in flight: whatever the member pinned must be released
          if (result?.ok === true) orphans.push(CID.parse(record.cid))
          continue
        }
        const entry = entryOf(record, peer)
        if (entry == null) continue
        if (result == null) {
          if (failure instanceof PoolRequestRefusedError && failure.reason !== 'rate-limited') {
            setState(entry, 'failed', failure.reason)
            topUp(record)
          } else if (failure instanceof PoolRequestRefusedError) {
            setState(entry, 'queued', failure.reason)
            retryAt.set(peer, Date.now() + retryMs)
          } else {
            markUnreachable(record, entry, (failure as Error)?.message ?? 'no answer')
            retryAt.set(peer, Date.now() + retryMs)
          }
          continue
        }
        delete entry.unreachableSince
        if (result.ok && result.receipt != null) {
          const receipt = await verifyReceipt(result.receipt)
          if (receipt?.cid === record.cid && receipt.peer === peer && receipt.requester === self) {
            setState(entry, 'pinned')
            entry.receipt = result.receipt
          } else {
            setState(entry, 'failed', 'bad-receipt')
            topUp(record)
          }
        } else if (result.reason === 'rate-limited') {
          setState(entry, 'queued', result.reason)
          retryAt.set(peer, Date.now() + retryMs)
        } else {
          setState(entry, 'failed', result.reason ?? 'refused')
          topUp(record)
        }
      }
      await save(sent.filter(r => records.get(r.cid) === r))
      for (const record of sent) notify(record)
      if (orphans.length > 0) await release(peer, orphans)
    } finally {
      busyPeers.delete(peer)
      schedule()
    }
  }

  /** Records the release first, so a holder unreachable now is told at a later health check. */
  async function release (peer: string, cids: CID[], options: AbortOptions = {}): Promise<void> {
    await db.batch(cids.map(cid => ({ type: 'put' as const, sublevel: releasesDb, key: `${peer}!${cid.toString()}`, value: Date.now() })))
    await deliverReleases(peer, cids, options)
  }

  // the batch of releases still forming for each holder, and the one in flight to it
  const forming = new Map<string, { cids: CID[], done: Promise<void> }>()
  const inFlightRelease = new Map<string, Promise<void>>()

  /**
   * Joins the release of `cid` to the next batch for `peer`, sent once the batch before it is
   * answered: removing thousands of pins opened one stream per pin and holder, and the holder's
   * and our own per-request state for each kept both daemons' heaps hundreds of MiB above idle.
   */
  async function releaseJoined (peer: string, cid: CID): Promise<void> {
    let batch = forming.get(peer)
    if (batch == null) {
      const cids: CID[] = []
      const before = inFlightRelease.get(peer) ?? Promise.resolve()
      const done = before
        .then(async () => { await new Promise(resolve => setImmediate(resolve)) })
        .then(async () => {
          // later releases form the next batch
          forming.delete(peer)
          await release(peer, cids)
        })
      const settled = done.catch(() => {})
      inFlightRelease.set(peer, settled)
      void settled.then(() => { if (inFlightRelease.get(peer) === settled) inFlightRelease.delete(peer) })
      batch = { cids, done }
      forming.set(peer, batch)
    }
    batch.cids.push(cid)
    await batch.done
  }

  async function deliverReleases (peer: string, cids: CID[], options: AbortOptions = {}): Promise<void> {
    const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(10_000), ...(options.signal == null ? [] : [options.signal])])
    for (let i = 0; i < cids.length; i += MAX_CIDS_PER_REQUEST) {
      const batch = cids.slice(i, i + MAX_CIDS_PER_REQUEST)
      try {
        await requestRelease({ libp2p }, peerIdFromString(peer), batch, { signal })
      } catch {
        return
      }
      await db.batch(batch.map(cid => ({ type: 'del' as const, sublevel: releasesDb, key: `${peer}!${cid.toString()}` })))
    }
  }

  async function healthCheck (): Promise<void> {
    if (healthRunning || !started) return
    healthRunning = true
    try {
      const byPeer = new Map<string, StoredPin[]>()
      for (const record of records.values()) {
        for (const entry of remotes(record)) {
          if (entry.state !== 'pinned') continue
          const list = byPeer.get(entry.peer) ?? []
          list.push(record)
          byPeer.set(entry.peer, list)
        }
      }
      await Promise.all([...byPeer].map(async ([peer, list]) => {
        for (let i = 0; i < list.length; i += MAX_CIDS_PER_REQUEST) {
          const batch = list.slice(i, i + MAX_CIDS_PER_REQUEST)
          let held: boolean[] | undefined
          let reason = 'no answer'
          try {
            held = await requestStatus({ libp2p }, peerIdFromString(peer), batch.map(r => CID.parse(r.cid)), {
              signal: AbortSignal.any([controller.signal, AbortSignal.timeout(Math.max(1_000, Math.min(healthIntervalMs, 30_000)))])
            })
          } catch (err) {
            reason = (err as Error).message
          }
          if (!started) return
          batch.forEach((record, n) => {
            const entry = entryOf(record, peer)
            if (entry?.state !== 'pinned' || records.get(record.cid) !== record) return
            if (held == null) {
              markUnreachable(record, entry, reason)
            } else if (held[n] === true) {
              delete entry.unreachableSince
            } else {
              delete entry.unreachableSince
              // the holder lost or dropped it: ask again
              setState(entry, 'queued', 'not held at health check')
              delete entry.receipt
            }
          })
          await save(batch.filter(r => records.get(r.cid) === r))
        }
      }))
      // releases a holder missed while it was away
      const pending = new Map<string, CID[]>()
      for await (const k of releasesDb.keys()) {
        const [peer, cid] = k.split('!') as [string, string]
        const list = pending.get(peer) ?? []
        list.push(CID.parse(cid))
        pending.set(peer, list)
      }
      await Promise.all([...pending].map(async ([peer, cids]) => { await deliverReleases(peer, cids) }))
      schedule()
    } finally {
      healthRunning = false
    }
  }

  function requireRecord (cid: CID): StoredPin {
    const record = records.get(key(cid))
    if (record == null) throw new NotReplicatedError(`${cid.toString()} is not a replicated pin`)
    return record
  }

  /** Drops the replicas over the wanted count (queued ones first) and releases them. */
  async function trim (record: StoredPin): Promise<void> {
    const active = remotes(record).filter(s => ACTIVE.has(s.state))
    const extra = active.length - (record.replicas - 1)
    if (extra <= 0) return
    const order = [...active].sort((a, b) => (a.state === 'pinned' ? 1 : 0) - (b.state === 'pinned' ? 1 : 0))
    const dropped = order.slice(0, extra)
    record.status = record.status.filter(s => !dropped.includes(s))
    await save([record])
    for (const entry of dropped) await release(entry.peer, [CID.parse(record.cid)])
  }

  return {
    async start () {
      if (started) return
      controller = new AbortController()
      records.clear()
      const resumed: StoredPin[] = []
      for await (const [, record] of recordsDb.iterator()) {
        let changed = false
        for (const entry of record.status) {
          // a request cut off by the stop: ask again
          if (entry.state === 'pinning') {
            entry.state = 'queued'
            changed = true
          }
        }
        if (topUp(record)) changed = true
        records.set(record.cid, record)
        if (changed) resumed.push(record)
      }
      await save(resumed)
      started = true
      healthTimer = setInterval(() => { void healthCheck().catch(() => {}) }, healthIntervalMs)
      healthTimer.unref?.()
      schedule()
    },

    async stop () {
      if (!started) return
      started = false
      controller.abort()
      if (healthTimer != null) clearInterval(healthTimer)
      if (roundTimer != null) clearTimeout(roundTimer)
      healthTimer = undefined
      roundTimer = undefined
      for (const list of waiters.values()) for (const wake of list) wake()
      waiters.clear()
    },

    async replicate (cid, options) {
      const replicas = Math.max(1, Math.floor(options.replicas))
      if (replicas > 1 && components.members().every(m => m === self)) {
        throw new ReplicationUnavailableError()
      }
      const pin = await pins.add(cid, {
        ...(options.signal == null ? {} : { signal: options.signal }),
        ...(options.name == null ? {} : { name: options.name }),
        ...(options.meta == null ? {} : { metadata: options.meta })
      })
      const existing = records.get(key(cid))
      const record: StoredPin = existing ?? {
        cid: key(cid),
        replicas,
        created: Date.now(),
        status: [{ peer: self, state: 'pinned', since: pin.created }]
      }
      record.replicas = replicas
      if (options.name != null) record.name = options.name
      if (options.meta != null) record.meta = options.meta
      topUp(record)
      records.set(record.cid, record)
      await db.batch([{ type: 'put', sublevel: recordsDb, key: record.cid, value: record }], { sync: true } as any)
      await trim(record)
      schedule()
      return toReplicatedPin(record)
    },

    async update (cid, options) {
      const record = requireRecord(cid)
      if (options.replicas != null) record.replicas = Math.max(1, Math.floor(options.replicas))
      if (options.name != null) record.name = options.name
      if (options.meta != null) record.meta = options.meta
      topUp(record)
      await save([record])
      await trim(record)
      schedule()
      return toReplicatedPin(record)
    },

    async status (cid) {
      const record = records.get(key(cid))
      return record == null ? undefined : toReplicatedPin(record)
    },

    async * list (options = {}) {
      for (const record of [...records.values()]) {
        options.signal?.throwIfAborted()
        yield toReplicatedPin(record)
      }
    },

    async remove (cid, options = {}) {
      const record = requireRecord(cid)
      try {
        await pins.rm(cid, options)
      } catch (err) {
        if (!(err instanceof NotPinnedError)) throw err
      }
      records.delete(record.cid)
      await recordsDb.del(record.cid)
      const list = waiters.get(record.cid)
      waiters.delete(record.cid)
      for (const wake of list ?? []) wake()
      await Promise.all(remotes(record).map(async entry => { await releaseJoined(entry.peer, CID.parse(record.cid)) }))
    },

    async settled (cid, options = {}) {
      const record = requireRecord(cid)
      if (!isSettled(record)) {
        await new Promise<void>((resolve, reject) => {
          const onAbort = (): void => { reject(options.signal?.reason) }
          options.signal?.addEventListener('abort', onAbort, { once: true })
          const list = waiters.get(record.cid) ?? []
          list.push(() => {
            options.signal?.removeEventListener('abort', onAbort)
            resolve()
          })
          waiters.set(record.cid, list)
        })
      }
      return toReplicatedPin(records.get(record.cid) ?? record)
    },

    async * repair (options = {}) {
      for await (const result of pins.verify(options)) {
        if (result.ok) {
          yield { cid: result.cid, ok: true, repaired: 0, bad: [] } satisfies RepairResult
          continue
        }
        const record = records.get(key(result.cid))
        const holders = record != null
          ? remotes(record).filter(s => s.state === 'pinned').map(s => s.peer)
          : components.members().filter(m => m !== self)
        const broken = result.bad.map(b => b.cid)
        let repaired = 0
        for (const holder of holders) {
          const lease = components.leases.open()
          try {
            const fetched = await fetchDag({ libp2p, blockstore: components.blockstore, ...(components.buffers == null ? {} : { buffers: components.buffers }) }, peerIdFromString(holder), {
              blocks: broken,
              maxBytes: broken.length * 4 * 1024 * 1024,
              lease,
              overwrite: true,
              ...(options.signal == null ? {} : { signal: options.signal })
            })
            repaired = fetched.blocks
            break
          } catch {
            // the next holder may have it
          } finally {
            lease.close()
          }
        }
        let after = result
        for await (const again of pins.verify({ cids: [result.cid], ...(options.signal == null ? {} : { signal: options.signal }) })) after = again
        yield { cid: result.cid, ok: after.ok, repaired, bad: after.bad }
      }
    }
  }
}
