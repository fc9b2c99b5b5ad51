import { randomBytes } from 'node:crypto'
import { multiaddr } from '@multiformats/multiaddr'
import { base32 } from 'multiformats/bases/base32'
import { CID } from 'multiformats/cid'
import { InvalidCidError } from '../../content/errors.ts'
import { InvalidPinRequestError, PinRequestNotFoundError, PinningServiceStoppedError } from './errors.ts'
import { PSA_STATUSES, deriveStatus } from './status.ts'
import type { DerivedStatus, PsaStatus } from './status.ts'
import type { ReplicatedPin, ReplicationManager } from '../../pinning/replication-types.ts'
import type { PinManager } from '../../pinning/types.ts'
import type { ApiNetwork } from '../types.ts'
import type { AbortOptions } from 'abort-error'
import type { AbstractBatchOperation, AbstractBatchOptions, AbstractLevel, AbstractSublevel } from 'abstract-level'

/** Any `level`-family database; the daemon gives a `psa` sublevel of the repo's LevelDB. */
export type PsaDb = AbstractLevel<any, string, any>

export type TextMatch = 'exact' | 'iexact' | 'partial' | 'ipartial'

/** The spec's `Pin` object. */
export interface PsaPin {
  cid: string
  name?: string
  origins?: string[]
  meta?: Record<string, string>
}

/** The spec's `PinStatus` object, `created` as an RFC 3339 string. */
export interface PsaPinStatus {
  requestid: string
  status: PsaStatus
  created: string
  pin: PsaPin
  delegates: string[]
  info: Record<string, string>
}

export interface PsaPinResults {
  count: number
  results: PsaPinStatus[]
}

export interface PsaListQuery {
  cid?: string[]
  name?: string
  match?: TextMatch
  /** Default `['pinned']`, as the spec says for a request without filters. */
  status?: PsaStatus[]
  /** Milliseconds since the epoch; only requests created strictly before/after. */
  before?: number
  after?: number
  limit?: number
  meta?: Record<string, string>
}

export interface PinningServiceComponents {
  db: PsaDb
  replication: ReplicationManager
  network: Pick<ApiNetwork, 'peerId' | 'addresses'>
  /** For `info.dag_size`: the local pin's size. */
  pins?: Pick<PinManager, 'get'>
  /** Best-effort dial of a client's `origins`, so the DAG can be fetched from them directly. */
  dial?(addr: string, options?: AbortOptions): Promise<void>
}

export interface PinningServiceInit {
  /** Replicas for a request whose `meta.replicas` is absent (the local copy counts as one). */
  defaultReplicas?: number
  maxReplicas?: number
  /** How long `add`/`replace` wait for the local pin before answering `queued`/`pinning`. */
  settleWaitMs?: number
  dialTimeoutMs?: number
}

export interface PinningService {
  start(): Promise<void>
  stop(): Promise<void>
  add(pin: PsaPin): Promise<PsaPinStatus>
  get(requestid: string): Promise<PsaPinStatus>
  /** A new request for `pin`; the old one is gone at once, its pin released once the new one settles. */
  replace(requestid: string, pin: PsaPin): Promise<PsaPinStatus>
  remove(requestid: string): Promise<void>
  list(query?: PsaListQuery): Promise<PsaPinResults>
}

/** What is stored under `r/<requestid>`. */
interface RequestRecord {
  requestid: string
  /** As the client sent it. */
  cid: string
  name?: string
  origins?: string[]
  meta?: Record<string, string>
  created: number
  replicas: number
}

interface Job {
  controller: AbortController
  rerun: boolean
  done: Promise<void>
}

const MAX_CIDS = 10
const MAX_LIMIT = 1000
const MAX_DELEGATES = 20
const DEFAULT_LIMIT = 10
const ID_TIME_CHARS = 12
const SYNCED = { sync: true } as AbstractBatchOptions<string, any>
const REQUEST_ID = /^[0-9a-f]{28}$/

/** Multihash key: a CIDv0 and its CIDv1 name one pin, as in the pin manager. */
function mhKey (cid: CID): string {
  return base32.baseEncode(cid.multihash.bytes)
}

/** Time-ordered ids: the record table sorts by `created`, so pagination is a key range. */
function idTime (ms: number): string {
  return ms.toString(16).padStart(ID_TIME_CHARS, '0')
}

function parseCid (value: string): CID {
  try {
    return CID.parse(value.trim())
  } catch (err) {
    throw new InvalidCidError(value, { cause: err })
  }
}

function isAbort (err: unknown): boolean {
  return (err as { name?: unknown } | null)?.name === 'AbortError'
}

function message (err: unknown): string {
  return err instanceof Error && err.message !== '' ? err.message : String(err)
}

function nameMatches (name: string | undefined, wanted: string, match: TextMatch): boolean {
  if (name == null) return false
  switch (match) {
    case 'exact': return name === wanted
    case 'iexact': return name.toLowerCase() === wanted.toLowerCase()
    case 'partial': return name.includes(wanted)
    case 'ipartial': return name.toLowerCase().includes(wanted.toLowerCase())
  }
}

/**
 * The IPFS Pinning Service API's model over a {@link ReplicationManager}: each pin request is a
 * record in LevelDB with its own `requestid`; several requests may name one CID, which is
 * replicated once with the highest replica count any live request wants and released when the
 * last request naming it goes. Pinning runs in the background; `add` waits a moment so that
 * content already on the box answers `pinned` at once.
 */
export function createPinningService (components: PinningServiceComponents, init: PinningServiceInit = {}): PinningService {
  const { db, replication, network } = components
  const defaultReplicas = init.defaultReplicas ?? 1
  const maxReplicas = init.maxReplicas ?? 20
  const settleWaitMs = init.settleWaitMs ?? 1000
  const dialTimeoutMs = init.dialTimeoutMs ?? 10_000

  const records: AbstractSublevel<PsaDb, any, string, RequestRecord> = db.sublevel<string, RequestRecord>('r', { valueEncoding: 'json' })
  /** `<mh>!<requestid>`: the requests naming a CID. */
  const byCid: AbstractSublevel<PsaDb, any, string, string> = db.sublevel<string, string>('c', { valueEncoding: 'utf8' })
  /** `<requestid>` → why pinning failed. */
  const failures: AbstractSublevel<PsaDb, any, string, string> = db.sublevel<string, string>('f', { valueEncoding: 'utf8' })
  /** `<new mh>!<requestid>` → the CID a replaced request pinned, released once the new pin settles. */
  const releases: AbstractSublevel<PsaDb, any, string, string> = db.sublevel<string, string>('x', { valueEncoding: 'utf8' })

  const jobs = new Map<string, Job>()
  const lockTails = new Map<string, Promise<void>>()
  const background = new Set<Promise<unknown>>()
  let lastCreated = 0
  let running = false
  /** Cuts short what stop() should not wait for: origin dials. */
  let stopping = new AbortController()

  function ensureRunning (): void {
    if (!running) throw new PinningServiceStoppedError()
  }

  function track (promise: Promise<unknown>): void {
    const p = promise.catch(() => {}).finally(() => background.delete(p))
    background.add(p)
  }

  /** Serializes changes per CID, so a release never races a new request for the same content. */
  async function withLock<T> (key: string, fn: () => Promise<T>): Promise<T> {
    const prev = lockTails.get(key) ?? Promise.resolve()
    let release!: () => void
    const mine = new Promise<void>(resolve => { release = resolve })
    const tail = prev.then(async () => { await mine })
    lockTails.set(key, tail)
    await prev
    try {
      return await fn()
    } finally {
      release()
      if (lockTails.get(key) === tail) lockTails.delete(key)
    }
  }

  /** Unique and increasing, even for two requests in one millisecond or a clock set back. */
  function nextCreated (): number {
    lastCreated = Math.max(Date.now(), lastCreated + 1)
    return lastCreated
  }

  async function requestsFor (mh: string): Promise<RequestRecord[]> {
    const ids: string[] = []
    for await (const id of byCid.values({ gt: `${mh}!`, lt: `${mh}!~` })) ids.push(id)
    const found = await records.getMany(ids)
    return found.filter((r): r is RequestRecord => r != null)
  }

  async function getRecord (requestid: string): Promise<RequestRecord> {
    const record = REQUEST_ID.test(requestid) ? await records.get(requestid) : undefined
    if (record == null) throw new PinRequestNotFoundError(`no pin request ${requestid}`)
    return record
  }

  function validate (pin: PsaPin): { cid: CID, replicas: number } {
    const cid = parseCid(pin.cid)
    if (pin.name != null && pin.name.length > 255) throw new InvalidPinRequestError('name is longer than 255 characters')
    for (const origin of pin.origins ?? []) {
      try {
        multiaddr(origin)
      } catch (err) {
        throw new InvalidPinRequestError(`origin is not a multiaddr: ${origin}`, { cause: err })
      }
    }
    let replicas = defaultReplicas
    const asked = pin.meta?.replicas
    if (asked != null) {
      replicas = /^\d+$/.test(asked) ? Number(asked) : NaN
      if (!Number.isSafeInteger(replicas) || replicas < 1 || replicas > maxReplicas) {
        throw new InvalidPinRequestError(`meta.replicas must be an integer from 1 to ${maxReplicas}`)
      }
    }
    return { cid, replicas }
  }

  function newRecord (pin: PsaPin, replicas: number): RequestRecord {
    const created = nextCreated()
    return {
      requestid: idTime(created) + randomBytes(8).toString('hex'),
      cid: pin.cid.trim(),
      ...(pin.name == null ? {} : { name: pin.name }),
      ...(pin.origins == null || pin.origins.length === 0 ? {} : { origins: pin.origins }),
      ...(pin.meta == null ? {} : { meta: pin.meta }),
      created,
      replicas
    }
  }

  function putOps (record: RequestRecord, mh: string): Array<AbstractBatchOperation<PsaDb, string, any>> {
    return [
      { type: 'put', sublevel: records, key: record.requestid, value: record },
      { type: 'put', sublevel: byCid, key: `${mh}!${record.requestid}`, value: record.requestid }
    ]
  }

  function delOps (record: RequestRecord, mh: string): Array<AbstractBatchOperation<PsaDb, string, any>> {
    return [
      { type: 'del', sublevel: records, key: record.requestid },
      { type: 'del', sublevel: byCid, key: `${mh}!${record.requestid}` },
      { type: 'del', sublevel: failures, key: record.requestid }
    ]
  }

  function dialOrigins (origins: string[]): void {
    const dial = components.dial
    if (dial == null) return
    for (const origin of origins) {
      // a hint only: a failed dial must not fail the pin
      track(dial(origin, { signal: AbortSignal.any([stopping.signal, AbortSignal.timeout(dialTimeoutMs)]) }))
    }
  }

  /** One pass: make the replicated pin match what the live requests for `mh` want. */
  async function reconcile (cid: CID, mh: string, signal: AbortSignal): Promise<void> {
    const live = await requestsFor(mh)
    const failed = new Set(await failures.getMany(live.map(r => r.requestid)).then(f => live.filter((_, i) => f[i] != null).map(r => r.requestid)))
    const wanting = live.filter(r => !failed.has(r.requestid))
    if (wanting.length === 0) return
    const wanted = Math.max(...wanting.map(r => r.replicas))
    const newest = wanting.reduce((a, b) => (b.created > a.created ? b : a))
    dialOrigins([...new Set(wanting.flatMap(r => r.origins ?? []))])
    try {
      const existing = await replication.status(cid)
      if (existing == null) {
        await replication.replicate(cid, {
          replicas: wanted,
          signal,
          ...(newest.name == null ? {} : { name: newest.name }),
          ...(newest.meta == null ? {} : { meta: newest.meta })
        })
      } else if (existing.replicas < wanted) {
        await replication.update(cid, { replicas: wanted, signal })
      }
    } catch (err) {
      if (signal.aborted || isAbort(err)) return
      const held = await replication.status(cid).catch(() => undefined)
      // a request the existing replicated pin already satisfies has not failed
      const unmet = wanting.filter(r => held == null || r.replicas > held.replicas)
      await failures.batch(unmet.map(r => ({ type: 'put' as const, key: r.requestid, value: message(err) })), SYNCED)
    }
  }

  /** Starts (or re-arms) the background work for one CID; the promise never rejects. */
  function ensureJob (cid: CID, mh: string): Promise<void> {
    const current = jobs.get(mh)
    if (current != null) {
      current.rerun = true
      return current.done
    }
    const job: Job = { controller: new AbortController(), rerun: false, done: Promise.resolve() }
    job.done = (async () => {
      try {
        do {
          job.rerun = false
          await reconcile(cid, mh, job.controller.signal)
        } while (job.rerun && !job.controller.signal.aborted)
      } catch {
        // LevelDB closed under us during stop(); start() picks the request up again
      } finally {
        jobs.delete(mh)
      }
      if (running) track(releaseReplaced(mh))
    })()
    jobs.set(mh, job)
    return job.done
  }

  /** Under the CID's lock: unpin it unless another request still names it. */
  async function releaseIfUnused (cid: CID, mh: string, except?: string): Promise<void> {
    const others = (await requestsFor(mh)).filter(r => r.requestid !== except)
    if (others.length > 0) return
    const job = jobs.get(mh)
    if (job != null) {
      job.controller.abort()
      await job.done
    }
    if (await replication.status(cid) == null) return
    try {
      await replication.remove(cid)
    } catch (err) {
      const code = (err as { code?: unknown }).code
      if (code !== 'ERR_NOT_REPLICATED' && code !== 'ERR_NOT_PINNED') throw err
    }
  }

  /** The pins of requests replaced by a request for `mh`, kept until that one settled. */
  async function releaseReplaced (mh: string): Promise<void> {
    for await (const [key, oldCid] of releases.iterator({ gt: `${mh}!`, lt: `${mh}!~` })) {
      const cid = CID.parse(oldCid)
      // left in place on failure: the next start() tries again
      await withLock(mhKey(cid), async () => { await releaseIfUnused(cid, mhKey(cid)) })
      await releases.del(key)
    }
  }

  function delegates (): string[] {
    const peerId = network.peerId()
    const addrs = network.addresses().map(a => (a.includes('/p2p/') ? a : `${a}/p2p/${peerId}`))
    return addrs.length === 0 ? [`/p2p/${peerId}`] : [...new Set(addrs)].slice(0, MAX_DELEGATES)
  }

  function derive (record: RequestRecord, replicated: ReplicatedPin | undefined, failure: string | undefined, mh: string): DerivedStatus {
    return deriveStatus({ wanted: record.replicas, busy: jobs.has(mh), ...(failure == null ? {} : { failure }) }, replicated)
  }

  async function view (record: RequestRecord, replicated: ReplicatedPin | undefined, derived: DerivedStatus): Promise<PsaPinStatus> {
    const info: Record<string, string> = {
      replicas_wanted: String(record.replicas),
      replicas_pinned: String(derived.pinned)
    }
    if (derived.details != null) info.status_details = derived.details
    if (replicated != null) {
      info.replicas = JSON.stringify(replicated.status.map(r => ({
        peer: r.peer,
        state: r.state,
        since: new Date(r.since).toISOString(),
        ...(r.reason == null ? {} : { reason: r.reason })
      })))
      const local = await components.pins?.get(replicated.cid)
      if (local != null) info.dag_size = String(local.bytes)
    }
    return {
      requestid: record.requestid,
      status: derived.status,
      created: new Date(record.created).toISOString(),
      pin: {
        cid: record.cid,
        ...(record.name == null ? {} : { name: record.name }),
        ...(record.origins == null ? {} : { origins: record.origins }),
        ...(record.meta == null ? {} : { meta: record.meta })
      },
      delegates: delegates(),
      info
    }
  }

  async function viewOf (record: RequestRecord): Promise<PsaPinStatus> {
    const cid = CID.parse(record.cid)
    const replicated = await replication.status(cid)
    return await view(record, replicated, derive(record, replicated, await failures.get(record.requestid), mhKey(cid)))
  }

  /** Gives background work a moment, so content already on the box answers `pinned`. */
  async function settleBriefly (done: Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([done, new Promise<void>(resolve => { timer = setTimeout(resolve, settleWaitMs) })])
    clearTimeout(timer)
  }

  /** Requests that need work after a restart: unsatisfied ones, and releases still owed. */
  async function resume (): Promise<void> {
    const groups = new Map<string, { cid: CID, wanted: number }>()
    for await (const record of records.values()) {
      if (!running) return
      if (await failures.get(record.requestid) != null) continue
      const cid = CID.parse(record.cid)
      const mh = mhKey(cid)
      const group = groups.get(mh)
      if (group == null) groups.set(mh, { cid, wanted: record.replicas })
      else group.wanted = Math.max(group.wanted, record.replicas)
    }
    for (const [mh, { cid, wanted }] of groups) {
      if (!running) return
      const held = await replication.status(cid)
      if (held == null || held.replicas < wanted) void ensureJob(cid, mh)
    }
    const owed = new Set<string>()
    for await (const key of releases.keys()) owed.add(key.slice(0, key.indexOf('!')))
    for (const mh of owed) {
      if (!jobs.has(mh)) track(releaseReplaced(mh))
    }
  }

  return {
    async start () {
      if (running) return
      for await (const key of records.keys({ reverse: true, limit: 1 })) {
        lastCreated = parseInt(key.slice(0, ID_TIME_CHARS), 16)
      }
      stopping = new AbortController()
      running = true
      track(resume())
    },

    async stop () {
      if (!running) return
      running = false
      stopping.abort()
      for (const job of jobs.values()) job.controller.abort()
      await Promise.allSettled([...jobs.values()].map(async job => { await job.done }))
      while (background.size > 0) await Promise.allSettled([...background])
    },

    async add (pin) {
      ensureRunning()
      const { cid, replicas } = validate(pin)
      const mh = mhKey(cid)
      const record = newRecord(pin, replicas)
      // boxed: a returned promise would be awaited, holding the lock for the whole pin
      const { done } = await withLock(mh, async () => {
        await db.batch(putOps(record, mh), SYNCED)
        return { done: ensureJob(cid, mh) }
      })
      await settleBriefly(done)
      return await viewOf(record)
    },

    async get (requestid) {
      ensureRunning()
      return await viewOf(await getRecord(requestid))
    },

    async replace (requestid, pin) {
      ensureRunning()
      const old = await getRecord(requestid)
      const { cid, replicas } = validate(pin)
      const oldCid = CID.parse(old.cid)
      const oldMh = mhKey(oldCid)
      const mh = mhKey(cid)
      const record = newRecord(pin, replicas)
      const swap = async (): Promise<{ done: Promise<void> }> => {
        // the old request may have gone while this one waited for the lock
        await getRecord(requestid)
        const ops = [...delOps(old, oldMh), ...putOps(record, mh)]
        // the old pin stays until the new one holds, so blocks both share are never collected
        if (oldMh !== mh) ops.push({ type: 'put', sublevel: releases, key: `${mh}!${record.requestid}`, value: oldCid.toString() })
        await db.batch(ops, SYNCED)
        return { done: ensureJob(cid, mh) }
      }
      const [first, second] = [oldMh, mh].sort()
      const { done } = first === second
        ? await withLock(mh, swap)
        : await withLock(first as string, async () => await withLock(second as string, swap))
      await settleBriefly(done)
      return await viewOf(record)
    },

    async remove (requestid) {
      ensureRunning()
      const found = await getRecord(requestid)
      const cid = CID.parse(found.cid)
      const mh = mhKey(cid)
      await withLock(mh, async () => {
        const record = await getRecord(requestid)
        // unpin first: if that fails the request is still there to retry
        await releaseIfUnused(cid, mh, record.requestid)
        await db.batch(delOps(record, mh), SYNCED)
      })
    },

    async list (query = {}) {
      ensureRunning()
      const limit = query.limit ?? DEFAULT_LIMIT
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new InvalidPinRequestError(`limit must be from 1 to ${MAX_LIMIT}`)
      const statuses = new Set<PsaStatus>(query.status ?? ['pinned'])
      for (const s of statuses) {
        if (!PSA_STATUSES.includes(s)) throw new InvalidPinRequestError(`unknown status ${String(s)}`)
      }
      const match = query.match ?? 'exact'
      const range: { lt?: string, gte?: string, reverse: true } = { reverse: true }
      if (query.before != null) range.lt = idTime(Math.max(0, Math.ceil(query.before)))
      if (query.after != null) range.gte = idTime(Math.floor(query.after) + 1)

      let candidates: AsyncIterable<RequestRecord> | Iterable<RequestRecord>
      if (query.cid != null && query.cid.length > 0) {
        if (query.cid.length > MAX_CIDS) throw new InvalidPinRequestError(`at most ${MAX_CIDS} CIDs per query`)
        const mhs = new Set(query.cid.map(c => mhKey(parseCid(c))))
        const found: RequestRecord[] = []
        for (const mh of mhs) found.push(...await requestsFor(mh))
        candidates = found
          .filter(r => (range.lt == null || r.requestid < range.lt) && (range.gte == null || r.requestid >= range.gte))
          .sort((a, b) => (a.requestid < b.requestid ? 1 : -1))
      } else {
        candidates = records.values(range)
      }

      const replicatedByMh = new Map<string, ReplicatedPin | undefined>()
      const results: PsaPinStatus[] = []
      let count = 0
      for await (const record of candidates) {
        if (query.name != null && !nameMatches(record.name, query.name, match)) continue
        if (query.meta != null && !Object.entries(query.meta).every(([k, v]) => record.meta?.[k] === v)) continue
        const cid = CID.parse(record.cid)
        const mh = mhKey(cid)
        if (!replicatedByMh.has(mh)) replicatedByMh.set(mh, await replication.status(cid))
        const replicated = replicatedByMh.get(mh)
        const derived = derive(record, replicated, await failures.get(record.requestid), mh)
        if (!statuses.has(derived.status)) continue
        count++
        if (results.length < limit) results.push(await view(record, replicated, derived))
      }
      return { count, results }
    }
  }
}
