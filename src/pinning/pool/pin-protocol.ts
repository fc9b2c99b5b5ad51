import { PoolProtocolError, PoolRequestRefusedError, TransferTooLargeError } from '../errors.ts'
import { fetchDag } from './transfer.ts'
import { abortStream, decodePinRequest, encodeMessage, encodeReceipt, exchange, messageStream, MESSAGE_VERSION, PIN_PROTOCOL, parseCids } from './messages.ts'
import type { PinItemResult, PinProtocolRequest, PinProtocolResponse, Refusal } from './messages.ts'
import type { FetchedDag } from './transfer.ts'
import type { BufferPool } from '../../store/buffer-pool.ts'
import type { PinDb } from '../pin-manager.ts'
import type { PinManager } from '../types.ts'
import type { BlockLeases, RepoBlockstore } from '../../store/types.ts'
import type { AbortOptions, Libp2p, PeerId, PrivateKey, Stream } from '@libp2p/interface'
import type { AbstractSublevel } from 'abstract-level'
import type { CID } from 'multiformats/cid'

/** Marks a pin this node made for a pool member, so releasing never removes the owner's own pin. */
export const REPLICA_META_KEY = 'pinbox.pool'

export interface PinServerComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>
  blockstore: Pick<RepoBlockstore, 'put' | 'has' | 'delete' | 'stat'>
  leases: BlockLeases
  pins: Pick<PinManager, 'add' | 'get' | 'rm'>
  db: PinDb
  privateKey: PrivateKey
  peerId: PeerId
  isMember(peer: PeerId): boolean
  /** Reusable buffers for the blocks a fetch receives (FetchDagComponents). */
  buffers?: BufferPool
}

export interface PinServerInit {
  /** Bytes each member may keep on this node. */
  sharePerMember: number
  /** The storage quota (`storage.max`). */
  maxBytes: number
  requestsPerMinute?: number
  cidsPerMinute?: number
  /** CIDs one member may have waiting; more is refused as `rate-limited`. */
  maxQueuedPerPeer?: number
  /** Requests fetched and pinned at once, over all members. */
  concurrency?: number
  maxInboundStreams?: number
  /** Longest a transfer may run. */
  fetchTimeoutMs?: number
}

export interface PinServer {
  start(): Promise<void>
  stop(): Promise<void>
  /** Bytes this node holds for `peer` (its share in use). */
  usage(peer: string): Promise<number>
}

interface HeldRecord {
  size: number
  pinnedAt: number
}

interface Job {
  peer: PeerId
  items: Array<{ cid: CID, size: number }>
  resolve(results: Map<string, { ok: boolean, reason?: Refusal, pinnedAt?: number }>): void
}

/** Refills `rate` tokens a minute, holding at most `rate`. */
class TokenBucket {
  private tokens: number
  private last: number
  private readonly rate: number

  constructor (rate: number) {
    this.rate = rate
    this.tokens = rate
    this.last = Date.now()
  }

  take (n: number): boolean {
    const now = Date.now()
    this.tokens = Math.min(this.rate, this.tokens + (now - this.last) * this.rate / 60_000)
    this.last = now
    if (this.tokens < n) return false
    this.tokens -= n
    return true
  }
}

const usageKey = (peer: string): string => peer
const heldKey = (cid: CID, peer: string): string => `${cid.toString()}!${peer}`

/**
 * Receiver's side of `/pinbox/pin/1.0.0`. Answers a `pin` request once its DAGs are fetched
 * (pulled from the requester over `/pinbox/dag/1.0.0`), verified and pinned durably, with one
 * signed receipt per CID. Work waits in one queue per member, served round-robin, so a member
 * flooding requests only delays itself.
 */
export function createPinServer (components: PinServerComponents, init: PinServerInit): PinServer {
  const { libp2p, blockstore, leases, pins, db, privateKey } = components
  const self = components.peerId.toString()
  const concurrency = init.concurrency ?? 4
  const maxQueuedPerPeer = init.maxQueuedPerPeer ?? 10_000
  const requestsPerMinute = init.requestsPerMinute ?? 600
  const cidsPerMinute = init.cidsPerMinute ?? 100_000
  const fetchTimeoutMs = init.fetchTimeoutMs ?? 30 * 60_000

  const usageDb: AbstractSublevel<PinDb, any, string, number> = db.sublevel<string, number>('pool-usage', { valueEncoding: 'json' })
  const heldDb: AbstractSublevel<PinDb, any, string, HeldRecord> = db.sublevel<string, HeldRecord>('pool-held', { valueEncoding: 'json' })

  const requestBuckets = new Map<string, TokenBucket>()
  const cidBuckets = new Map<string, TokenBucket>()
  // insertion order is the round-robin order: a peer served goes to the back
  const queues = new Map<string, Job[]>()
  const queuedCids = new Map<string, number>()
  // bytes accepted but not yet pinned, so concurrent requests cannot both fit the same room
  const reservedByPeer = new Map<string, number>()
  let reservedTotal = 0
  let active = 0
  let started = false
  let controller = new AbortController()
  // usage updates of one peer must not interleave (read-modify-write)
  const peerLocks = new Map<string, Promise<unknown>>()

  function bucket (map: Map<string, TokenBucket>, peer: string, rate: number): TokenBucket {
    let b = map.get(peer)
    if (b == null) {
      b = new TokenBucket(rate)
      map.set(peer, b)
    }
    return b
  }

  async function withPeerLock<T> (peer: string, fn: () => Promise<T>): Promise<T> {
    const prev = peerLocks.get(peer) ?? Promise.resolve()
    const next = prev.then(fn, fn)
    const tail = next.catch(() => {})
    peerLocks.set(peer, tail)
    void tail.then(() => { if (peerLocks.get(peer) === tail) peerLocks.delete(peer) })
    return await next
  }

  async function getUsage (peer: string): Promise<number> {
    return (await usageDb.get(usageKey(peer))) ?? 0
  }

  function reserve (peer: string, bytes: number): void {
    reservedByPeer.set(peer, (reservedByPeer.get(peer) ?? 0) + bytes)
    reservedTotal += bytes
  }

  function unreserve (peer: string, bytes: number): void {
    const left = (reservedByPeer.get(peer) ?? 0) - bytes
    if (left <= 0) reservedByPeer.delete(peer)
    else reservedByPeer.set(peer, left)
    reservedTotal -= bytes
  }

  function nextJob (): Job | undefined {
    for (const [peer, queue] of queues) {
      queues.delete(peer)
      const job = queue.shift()
      if (queue.length > 0) queues.set(peer, queue)
      if (job != null) return job
    }
    return undefined
  }

  function pump (): void {
    while (started && active < concurrency) {
      const job = nextJob()
      if (job == null) return
      active++
      const peer = job.peer.toString()
      queuedCids.set(peer, (queuedCids.get(peer) ?? 0) - job.items.length)
      void runJob(job).then(job.resolve, () => {
        job.resolve(new Map(job.items.map(i => [i.cid.toString(), { ok: false, reason: 'fetch-failed' as Refusal }])))
      }).finally(() => {
        active--
        pump()
      })
    }
  }

  async function runJob (job: Job): Promise<Map<string, { ok: boolean, reason?: Refusal, pinnedAt?: number }>> {
    const peer = job.peer.toString()
    const results = new Map<string, { ok: boolean, reason?: Refusal, pinnedAt?: number }>()
    const total = job.items.reduce((n, i) => n + i.size, 0)
    const lease = leases.open()
    const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(fetchTimeoutMs)])
    try {
      const missing: CID[] = []
      const existing = new Map<string, boolean>()
      for (const item of job.items) {
        const pin = await pins.get(item.cid)
        existing.set(item.cid.toString(), pin != null)
        if (pin == null) missing.push(item.cid)
      }
      // what the transfer hashed and proved complete, so each pin need not read its file back
      const fetched = new Map<string, FetchedDag>()
      if (missing.length > 0) {
        try {
          const result = await fetchDag({ libp2p, blockstore, ...(components.buffers == null ? {} : { buffers: components.buffers }) }, job.peer, { roots: missing, maxBytes: total, lease, signal })
          for (const dag of result.dags) fetched.set(dag.root.toString(), dag)
        } catch (err) {
          const reason: Refusal = err instanceof TransferTooLargeError ? 'too-large' : 'fetch-failed'
          for (const item of job.items) results.set(item.cid.toString(), { ok: false, reason })
          return results
        }
      }
      // several pins at once share the blockstore's group-commit sync
      let next = 0
      const worker = async (): Promise<void> => {
        while (next < job.items.length) {
          const item = job.items[next++]
          if (item == null) break
          const key = item.cid.toString()
          try {
            if (existing.get(key) !== true) {
              const knownBlocks = fetched.get(key)?.blocks
              await pins.add(item.cid, { signal, metadata: { [REPLICA_META_KEY]: 'replica' }, ...(knownBlocks == null ? {} : { knownBlocks }) })
            }
            const pinnedAt = Date.now()
            await withPeerLock(peer, async () => {
              const already = await heldDb.get(heldKey(item.cid, peer))
              const usage = await getUsage(peer) + (already == null ? item.size : 0)
              await db.batch([
                { type: 'put', sublevel: heldDb, key: heldKey(item.cid, peer), value: { size: item.size, pinnedAt } },
                { type: 'put', sublevel: usageDb, key: usageKey(peer), value: usage }
              ])
            })
            results.set(key, { ok: true, pinnedAt })
          } catch {
            results.set(key, { ok: false, reason: 'fetch-failed' })
          }
        }
      }
      await Promise.all(Array.from({ length: Math.min(16, job.items.length) }, worker))
      return results
    } finally {
      lease.close()
      unreserve(peer, total)
    }
  }

  async function handlePin (peer: PeerId, request: Extract<PinProtocolRequest, { type: 'pin' }>): Promise<PinProtocolResponse> {
    const key = peer.toString()
    if (!bucket(cidBuckets, key, cidsPerMinute).take(request.items.length)) {
      return { v: MESSAGE_VERSION, refused: 'rate-limited', message: `more than ${cidsPerMinute} CIDs a minute` }
    }
    if ((queuedCids.get(key) ?? 0) + request.items.length > maxQueuedPerPeer) {
      return { v: MESSAGE_VERSION, refused: 'rate-limited', message: `more than ${maxQueuedPerPeer} CIDs waiting` }
    }
    const results: PinItemResult[] = []
    const accepted: Job['items'] = []
    const usage = await getUsage(key)
    let share = usage + (reservedByPeer.get(key) ?? 0)
    let free = init.maxBytes - blockstore.stat().bytes - reservedTotal
    for (const item of request.items) {
      let cid: CID
      try {
        cid = parseCids([item.cid])[0] as CID
      } catch {
        results.push({ cid: item.cid, ok: false, reason: 'bad-request' })
        continue
      }
      const held = await heldDb.get(heldKey(cid, key))
      if (held == null && share + item.size > init.sharePerMember) {
        results.push({ cid: item.cid, ok: false, reason: 'over-share' })
        continue
      }
      const local = await pins.get(cid)
      if (local == null && item.size > free) {
        results.push({ cid: item.cid, ok: false, reason: 'over-quota' })
        continue
      }
      if (held == null) share += item.size
      if (local == null) free -= item.size
      accepted.push({ cid, size: item.size })
      results.push({ cid: item.cid, ok: true })
    }
    if (accepted.length > 0) {
      const total = accepted.reduce((n, i) => n + i.size, 0)
      reserve(key, total)
      const done = await new Promise<Map<string, { ok: boolean, reason?: Refusal, pinnedAt?: number }>>((resolve) => {
        const queue = queues.get(key) ?? []
        queue.push({ peer, items: accepted, resolve })
        queues.set(key, queue)
        queuedCids.set(key, (queuedCids.get(key) ?? 0) + accepted.length)
        pump()
      })
      for (const result of results) {
        if (!result.ok) continue
        const outcome = done.get(result.cid) ?? done.get(accepted.find(a => a.cid.toString() === result.cid)?.cid.toString() ?? '')
        if (outcome?.ok === true) {
          const size = accepted.find(a => a.cid.toString() === result.cid)?.size ?? 0
          result.receipt = await encodeReceipt(privateKey, { cid: result.cid, peer: self, requester: key, pinnedAt: outcome.pinnedAt ?? Date.now(), size })
        } else {
          result.ok = false
          result.reason = outcome?.reason ?? 'fetch-failed'
        }
      }
    }
    return { v: MESSAGE_VERSION, items: results }
  }

  async function handleStatus (peer: PeerId, cids: CID[]): Promise<PinProtocolResponse> {
    const key = peer.toString()
    const held: boolean[] = []
    for (const cid of cids) {
      held.push(await heldDb.get(heldKey(cid, key)) != null && await pins.get(cid) != null)
    }
    return { v: MESSAGE_VERSION, held }
  }

  async function handleRelease (peer: PeerId, cids: CID[]): Promise<PinProtocolResponse> {
    const key = peer.toString()
    const items: PinItemResult[] = []
    for (const cid of cids) {
      await withPeerLock(key, async () => {
        const held = await heldDb.get(heldKey(cid, key))
        if (held != null) {
          const usage = Math.max(0, await getUsage(key) - held.size)
          await db.batch([
            { type: 'del', sublevel: heldDb, key: heldKey(cid, key) },
            { type: 'put', sublevel: usageDb, key: usageKey(key), value: usage }
          ])
        }
      })
      let others = false
      for await (const _k of heldDb.keys({ gt: `${cid.toString()}!`, lt: `${cid.toString()}!\xff`, limit: 1 })) others = true
      const pin = await pins.get(cid)
      if (!others && pin?.metadata?.[REPLICA_META_KEY] === 'replica') {
        await pins.rm(cid).catch(() => {})
      }
      items.push({ cid: cid.toString(), ok: true })
    }
    return { v: MESSAGE_VERSION, items }
  }

  async function onStream (stream: Stream, connection: { remotePeer: PeerId }): Promise<void> {
    const peer = connection.remotePeer
    const lp = messageStream(stream)
    const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(fetchTimeoutMs)])
    let response: PinProtocolResponse
    try {
      const bytes = (await lp.read({ signal })).subarray()
      if (!components.isMember(peer)) {
        response = { v: MESSAGE_VERSION, refused: 'not-a-member', message: `${peer.toString()} is not a member of this pool` }
      } else if (!bucket(requestBuckets, peer.toString(), requestsPerMinute).take(1)) {
        response = { v: MESSAGE_VERSION, refused: 'rate-limited', message: `more than ${requestsPerMinute} requests a minute` }
      } else {
        let request: PinProtocolRequest | undefined
        try {
          request = decodePinRequest(bytes)
        } catch (err) {
          response = { v: MESSAGE_VERSION, refused: 'bad-request', message: (err as Error).message }
        }
        if (request?.type === 'pin') response = await handlePin(peer, request)
        else if (request?.type === 'status') response = await handleStatus(peer, parseCids(request.cids))
        else if (request?.type === 'release') response = await handleRelease(peer, parseCids(request.cids))
        response ??= { v: MESSAGE_VERSION, refused: 'bad-request' }
      }
    } catch (err) {
      response = { v: MESSAGE_VERSION, refused: 'bad-request', message: err instanceof PoolProtocolError ? err.message : 'bad request' }
    }
    try {
      await lp.write(encodeMessage(response), { signal })
      await stream.close({ signal })
    } catch (err) {
      abortStream(stream, err)
    }
  }

  return {
    async start () {
      if (started) return
      controller = new AbortController()
      started = true
      await libp2p.handle(PIN_PROTOCOL, onStream, {
        maxInboundStreams: init.maxInboundStreams ?? 32,
        runOnLimitedConnection: true
      })
    },
    async stop () {
      if (!started) return
      started = false
      controller.abort()
      await libp2p.unhandle(PIN_PROTOCOL)
      // anyone still waiting is answered (as failed) so their streams close
      for (const queue of queues.values()) {
        for (const job of queue) job.resolve(new Map())
      }
      queues.clear()
    },
    async usage (peer) {
      return await getUsage(peer)
    }
  }
}

export interface PinClientComponents {
  libp2p: Pick<Libp2p, 'dialProtocol'>
}

async function ask (components: PinClientComponents, peer: PeerId, request: PinProtocolRequest, options: AbortOptions): Promise<PinProtocolResponse> {
  const stream = await components.libp2p.dialProtocol(peer, PIN_PROTOCOL, { ...options, runOnLimitedConnection: true })
  try {
    const response = await exchange(stream, request, options)
    if (response.refused != null) throw new PoolRequestRefusedError(response.refused, response.message)
    return response
  } catch (err) {
    abortStream(stream, err)
    throw err
  }
}

/** Asks `peer` to pin each CID (its DAG's size as counted here); one result per CID, in order. */
export async function requestPins (components: PinClientComponents, peer: PeerId, items: Array<{ cid: CID, size: number }>, options: AbortOptions = {}): Promise<PinItemResult[]> {
  const response = await ask(components, peer, { v: MESSAGE_VERSION, type: 'pin', items: items.map(i => ({ cid: i.cid.toString(), size: i.size })) }, options)
  const byCid = new Map((response.items ?? []).map(r => [r.cid, r]))
  return items.map(i => byCid.get(i.cid.toString()) ?? { cid: i.cid.toString(), ok: false, reason: 'bad-request' })
}

/** Which of `cids` `peer` still holds for us. */
export async function requestStatus (components: PinClientComponents, peer: PeerId, cids: CID[], options: AbortOptions = {}): Promise<boolean[]> {
  const response = await ask(components, peer, { v: MESSAGE_VERSION, type: 'status', cids: cids.map(String) }, options)
  return cids.map((_, i) => response.held?.[i] === true)
}

export async function requestRelease (components: PinClientComponents, peer: PeerId, cids: CID[], options: AbortOptions = {}): Promise<void> {
  await ask(components, peer, { v: MESSAGE_VERSION, type: 'release', cids: cids.map(String) }, options)
}
