import { CID } from 'multiformats/cid'
import { base32 } from 'multiformats/bases/base32'
import { sha1 } from 'multiformats/hashes/sha1'
import * as raw from 'multiformats/codecs/raw'
import * as json from 'multiformats/codecs/json'
import * as dagPb from '@ipld/dag-pb'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import { blockLinks, concatBytes, hasherTable, readBlock, readBlockPooled, verifyBlock } from '../content/blocks.ts'
import { createBufferPool } from '../store/buffer-pool.ts'
import { walkDag } from '../content/dag-walk.ts'
import { BlockMissingError } from '../content/errors.ts'
import { NotPinnedError, PinManagerStoppedError, PinnedRecursivelyError } from './errors.ts'
import type { AbortOptions } from 'abort-error'
import type { AbstractLevel, AbstractSublevel, AbstractBatchOperation, AbstractBatchOptions } from 'abstract-level'
import type { MultihashHasher } from 'multiformats/hashes/interface'
import type { RepoBlockstore, BlockLeases, Lease } from '../store/types.ts'
import type { KnownBlock, Pin, PinAddOptions, PinListed, PinListType, PinManager, PinType, PinVerifyResult } from './types.ts'

/** Any `level`-family database (a root `Level` or a sublevel of one). */
export type PinDb = AbstractLevel<any, string, any>

export interface PinManagerComponents {
  db: PinDb
  blockstore: Pick<RepoBlockstore, 'get' | 'has' | 'sync' | 'getPooled'>
  leases: BlockLeases
}

export interface PinManagerInit {
  /** CIDs per stored block-list chunk of a recursive pin. */
  chunkSize?: number
  /** Hashers `verify` knows besides sha2-256, sha2-512, sha1 and identity. */
  hashers?: MultihashHasher[]
  /** Walks a DAG yielding each distinct block once; the content layer's walker by default. */
  walk?: typeof walkDag
  /**
   * Where `add` reads the DAG from: a blockstore that fetches missing blocks from the network,
   * verifies them and writes them into the repo's store (whose `sync` still makes them durable).
   * The repo's own blockstore when absent, so a pin of absent content fails fast.
   */
  fetch?: Pick<RepoBlockstore, 'get'>
  /** Called after a pin record is durable, with every block it holds (the root alone for a direct pin). */
  onPinned?(pin: Pin, blocks: CID[]): void
  /** Called after a pin record is removed. */
  onUnpinned?(pin: Pin): void
}

/** What is stored under `pins/<key>`. */
interface PinRecord {
  cid: string
  type: PinType
  name?: string
  metadata?: Record<string, string>
  created: number
  blocks: number
  bytes: number
  /** Number of `pinblocks/<key>/<n>` chunks (recursive pins only). */
  chunks: number
}

type BadBlock = PinVerifyResult['bad'][number]
type BlockError = BadBlock['error']

const DEFAULT_CHUNK_SIZE = 1000

/** classic-level's `sync` (fsync before the write resolves); abstract-level's types do not name it. */
interface SyncBatchOptions extends AbstractBatchOptions<string, any> { sync: boolean }
const SYNCED: SyncBatchOptions = { sync: true }
const IDENTITY = 0x00

const DECODERS = new Map<number, (bytes: Uint8Array) => unknown>([
  [raw.code, raw.decode],
  [json.code, json.decode],
  [dagPb.code, dagPb.decode],
  [dagCbor.code, dagCbor.decode],
  [dagJson.code, dagJson.decode]
])

/**
 * Keyed by multihash, not by CID, so that a CIDv0 and its CIDv1 are one pin (the blockstore
 * keys blocks the same way).
 */
function pinKey (cid: CID): string {
  return base32.baseEncode(cid.multihash.bytes)
}

/** In-memory set key: no base32 pass over hundreds of thousands of CIDs. */
function memKey (cid: CID): string {
  const mh = cid.multihash.bytes
  return Buffer.from(mh.buffer, mh.byteOffset, mh.byteLength).toString('latin1')
}

/** Distinct per CID, like the walker's `cid.toString()` keys, without the base32 pass. */
function cidKey (cid: CID): string {
  const b = cid.bytes
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1')
}

/**
 * The walker's order (depth-first pre-order, links in encoding order, each CID once, identity
 * CIDs followed but not listed), reading only blocks that can link: a raw block the caller
 * just wrote and hashed is taken with its known size, so an add's pin does not re-read its file.
 */
async function * walkKnown (store: Pick<RepoBlockstore, 'get'>, lease: Lease, root: CID, known: Iterable<KnownBlock>, signal: AbortSignal): AsyncGenerator<{ cid: CID, size: number }> {
  const sizes = new Map<string, number>()
  for (const block of known) {
    if (block.cid.code === raw.code) sizes.set(cidKey(block.cid), block.size)
  }
  const seen = new Set<string>()
  const stack: CID[] = [root]
  while (stack.length > 0) {
    signal.throwIfAborted()
    const cid = stack.pop() as CID
    const key = cidKey(cid)
    if (seen.has(key)) continue
    seen.add(key)
    const size = cid.multihash.code === IDENTITY ? undefined : sizes.get(key)
    if (size != null) {
      lease.add(cid)
      yield { cid, size }
      continue
    }
    const bytes = await readBlock(store, cid, { signal })
    const links = blockLinks(cid, bytes)
    for (let i = links.length - 1; i >= 0; i--) stack.push(links[i] as CID)
    if (cid.multihash.code !== IDENTITY) yield { cid, size: bytes.byteLength }
  }
}

function chunkKey (key: string, n: number): string {
  return `${key}/${n.toString().padStart(8, '0')}`
}

/** CID bytes are self-delimiting, so a chunk is just their concatenation. */
function encodeChunk (cids: CID[]): Uint8Array {
  return concatBytes(cids.map(c => c.bytes))
}

function * decodeChunk (bytes: Uint8Array): Generator<CID> {
  let rest = bytes
  while (rest.byteLength > 0) {
    const [cid, remainder] = CID.decodeFirst(rest)
    yield cid
    rest = remainder
  }
}

function isMissing (err: unknown): boolean {
  const e = err as { name?: string, code?: string } | null
  return e instanceof BlockMissingError || e?.name === 'NotFoundError'
}

function toPin (record: PinRecord): Pin {
  const pin: Pin = {
    cid: CID.parse(record.cid),
    type: record.type,
    created: record.created,
    blocks: record.blocks,
    bytes: record.bytes
  }
  if (record.name != null) pin.name = record.name
  if (record.metadata != null) pin.metadata = record.metadata
  return pin
}

function toListed (record: PinRecord): PinListed {
  const listed: PinListed = { cid: CID.parse(record.cid), type: record.type }
  if (record.name != null) listed.name = record.name
  return listed
}

export function createPinManager (components: PinManagerComponents, init: PinManagerInit = {}): PinManager {
  const { db, blockstore, leases } = components
  const chunkSize = init.chunkSize ?? DEFAULT_CHUNK_SIZE
  const walk = init.walk ?? walkDag
  const source = init.fetch ?? blockstore
  const hashers = hasherTable([sha1, ...(init.hashers ?? [])])
  // verify reads a block, checks it and drops it: reused buffers, so verifying a 256 MiB pin does
  // not leave up to 64 MB of dead blocks for V8 to find (it took a daemon from 183 to 244 MiB)
  const verifyBuffers = createBufferPool({ maxFree: 2, idleMs: 10_000 })

  const pins: AbstractSublevel<PinDb, any, string, PinRecord> = db.sublevel<string, PinRecord>('pins', { valueEncoding: 'json' })
  const pinBlocks: AbstractSublevel<PinDb, any, string, Uint8Array> = db.sublevel<string, Uint8Array>('pinblocks', { valueEncoding: 'view' })

  let running = true
  // Aborted by stop() so that walks in flight end promptly instead of outliving the store.
  let stopController = new AbortController()
  const inFlight = new Set<Promise<unknown>>()

  function track<T> (p: Promise<T>): Promise<T> {
    inFlight.add(p)
    const done = (): void => { inFlight.delete(p) }
    p.then(done, done)
    return p
  }

  function ensureRunning (): void {
    if (!running) throw new PinManagerStoppedError()
  }

  async function getRecord (cid: CID): Promise<PinRecord | undefined> {
    return await pins.get(pinKey(cid))
  }

  function signalFor (options?: AbortOptions): AbortSignal {
    return options?.signal == null ? stopController.signal : AbortSignal.any([options.signal, stopController.signal])
  }

  async function * recordBlocks (key: string, record: PinRecord): AsyncGenerator<CID> {
    if (record.type === 'direct') {
      yield CID.parse(record.cid)
      return
    }
    for await (const chunk of pinBlocks.values({ gte: `${key}/`, lt: `${key}/\xff` })) {
      yield * decodeChunk(chunk)
    }
  }

  /** Leases each CID before it is read, so a GC sweeping now either spares it or the walk sees it gone. */
  function leasedBlockstore (lease: Lease): Pick<RepoBlockstore, 'get' | 'has'> {
    return {
      get (cid, options) {
        lease.add(cid)
        if (cid.multihash.code === IDENTITY) {
          const digest = cid.multihash.digest
          return (function * () { yield digest })()
        }
        return source.get(cid, options)
      },
      async has (cid, options) {
        lease.add(cid)
        return cid.multihash.code === IDENTITY ? true : await blockstore.has(cid, options)
      }
    }
  }

  async function doAdd (cid: CID, options: PinAddOptions): Promise<Pin> {
    ensureRunning()
    const recursive = options.recursive ?? true
    const key = pinKey(cid)
    const existing = await getRecord(cid)

    // Nothing to fetch: only the label changes (a direct request never downgrades a recursive pin).
    if (existing != null && (existing.type === 'recursive' || !recursive)) {
      const record: PinRecord = { ...existing }
      if (options.name != null) record.name = options.name
      if (options.metadata != null) record.metadata = options.metadata
      await db.batch([{ type: 'put', sublevel: pins, key, value: record }], SYNCED)
      return toPin(record)
    }

    const signal = signalFor(options)
    const lease = leases.open()
    try {
      const store = leasedBlockstore(lease)
      const cids: CID[] = []
      let bytes = 0
      if (recursive && options.knownBlocks != null) {
        for await (const block of walkKnown(store, lease, cid, options.knownBlocks, signal)) {
          cids.push(block.cid)
          bytes += block.size
          options.onProgress?.(cids.length, bytes)
        }
      } else if (recursive) {
        for await (const block of walk(store, cid, { signal })) {
          cids.push(block.cid)
          bytes += block.bytes.byteLength
          options.onProgress?.(cids.length, bytes)
        }
      } else {
        const block = await readBlock(store, cid, { signal })
        cids.push(cid)
        bytes = block.byteLength
        options.onProgress?.(1, bytes)
      }
      signal.throwIfAborted()

      // Blocks first, then the record: a record must never point at blocks a power cut can lose.
      await blockstore.sync({ signal })

      const record: PinRecord = {
        cid: cid.toString(),
        type: recursive ? 'recursive' : 'direct',
        created: existing?.created ?? Date.now(),
        blocks: cids.length,
        bytes,
        chunks: recursive ? Math.ceil(cids.length / chunkSize) : 0
      }
      const name = options.name ?? existing?.name
      const metadata = options.metadata ?? existing?.metadata
      if (name != null) record.name = name
      if (metadata != null) record.metadata = metadata

      const ops: Array<AbstractBatchOperation<PinDb, string, any>> = [{ type: 'put', sublevel: pins, key, value: record }]
      for (let n = 0; n < record.chunks; n++) {
        ops.push({ type: 'put', sublevel: pinBlocks, key: chunkKey(key, n), value: encodeChunk(cids.slice(n * chunkSize, (n + 1) * chunkSize)) })
      }
      for (let n = record.chunks; n < (existing?.chunks ?? 0); n++) {
        ops.push({ type: 'del', sublevel: pinBlocks, key: chunkKey(key, n) })
      }
      await db.batch(ops, SYNCED)
      const pin = toPin(record)
      init.onPinned?.(pin, cids)
      return pin
    } finally {
      lease.close()
    }
  }

  async function doRm (cid: CID, options: AbortOptions & { recursive?: boolean }): Promise<Pin> {
    ensureRunning()
    options.signal?.throwIfAborted()
    const key = pinKey(cid)
    const record = await getRecord(cid)
    if (record == null) throw new NotPinnedError(`${cid.toString()} is not pinned or pinned indirectly`)
    if (record.type === 'recursive' && options.recursive === false) {
      throw new PinnedRecursivelyError(`${cid.toString()} is pinned recursively`)
    }
    const ops: Array<AbstractBatchOperation<PinDb, string, any>> = [{ type: 'del', sublevel: pins, key }]
    for (let n = 0; n < record.chunks; n++) ops.push({ type: 'del', sublevel: pinBlocks, key: chunkKey(key, n) })
    await db.batch(ops, SYNCED)
    const pin = toPin(record)
    init.onUnpinned?.(pin)
    return pin
  }

  async function checkBlock (cid: CID, options: AbortOptions): Promise<BlockError | undefined> {
    let bytes: Uint8Array
    try {
      bytes = await readBlockPooled(blockstore, cid, verifyBuffers, options)
    } catch (err) {
      if (isMissing(err)) return 'missing'
      throw err
    }
    try {
      return await checkBytes(cid, bytes)
    } finally {
      verifyBuffers.release(bytes)
    }
  }

  /** The bytes are only hashed and test-decoded, nothing decoded from them outlives the call. */
  async function checkBytes (cid: CID, bytes: Uint8Array): Promise<BlockError | undefined> {
    if (!hashers.has(cid.multihash.code)) return 'undecodable'
    if (!await verifyBlock(cid, bytes, hashers)) return 'hash-mismatch'
    const decode = DECODERS.get(cid.code)
    if (decode != null) {
      try {
        decode(bytes)
      } catch {
        return 'undecodable'
      }
    }
    return undefined
  }

  /**
   * Every CID a recursive pin reaches other than as its own root (repeats included), in one
   * scan over all block lists rather than one range read per pin.
   */
  async function * indirectBlocks (options?: AbortOptions): AsyncGenerator<CID> {
    const firstChunk = chunkKey('', 0)
    for await (const [key, chunk] of pinBlocks.iterator()) {
      options?.signal?.throwIfAborted()
      // a list starts with its own root (the walk is pre-order), unless the root is an identity CID
      let checkRoot = key.endsWith(firstChunk)
      for (const cid of decodeChunk(chunk)) {
        if (checkRoot) {
          checkRoot = false
          if (key === chunkKey(pinKey(cid), 0)) continue
        }
        yield cid
      }
    }
  }

  /** `skip` holds CIDs already listed; each indirect CID is listed once. */
  async function * indirect (skip: Set<string>, options?: AbortOptions): AsyncGenerator<PinListed> {
    for await (const cid of indirectBlocks(options)) {
      const k = memKey(cid)
      if (skip.has(k)) continue
      skip.add(k)
      yield { cid, type: 'indirect' }
    }
  }

  async function * scanRecords (options?: AbortOptions): AsyncGenerator<[string, PinRecord]> {
    for await (const entry of pins.iterator()) {
      options?.signal?.throwIfAborted()
      yield entry
    }
  }

  return {
    async start () {
      if (running) return
      stopController = new AbortController()
      running = true
    },

    async stop () {
      if (!running) return
      running = false
      stopController.abort(new PinManagerStoppedError())
      await Promise.allSettled([...inFlight])
    },

    async add (cid, options = {}) {
      return await track(doAdd(cid, options))
    },

    async rm (cid, options = {}) {
      return await track(doRm(cid, options))
    },

    async get (cid) {
      const record = await getRecord(cid)
      return record == null ? undefined : toPin(record)
    },

    async * ls (options = {}) {
      const type: PinListType = options.type ?? 'all'
      const wantRecursive = type === 'all' || type === 'recursive'
      const wantDirect = type === 'all' || type === 'direct'
      // Indirect entries carry no name, so a name filter leaves them out.
      const wantIndirect = (type === 'all' || type === 'indirect') && options.name == null
      const nameOk = (r: PinRecord): boolean => options.name == null || r.name === options.name
      const typeOk = (r: PinRecord): boolean => r.type === 'recursive' ? wantRecursive : wantDirect

      if (options.cids != null) {
        // Resolve every CID before yielding any, so a caller never acts on half an answer.
        const out: PinListed[] = []
        const lookIndirect = new Map<string, CID>()
        for (const cid of options.cids) {
          const record = await getRecord(cid)
          if (record != null && typeOk(record) && nameOk(record)) out.push({ ...toListed(record), cid })
          else if (wantIndirect) lookIndirect.set(memKey(cid), cid)
          else throw new NotPinnedError(`${cid.toString()} is not pinned`)
        }
        if (lookIndirect.size > 0) {
          const found = new Set<string>()
          for await (const cid of indirectBlocks(options)) {
            const k = memKey(cid)
            if (lookIndirect.has(k)) found.add(k)
          }
          for (const [k, cid] of lookIndirect) {
            if (!found.has(k)) throw new NotPinnedError(`${cid.toString()} is not pinned`)
            out.push({ cid, type: 'indirect' })
          }
        }
        yield * out
        return
      }

      const emitted = new Set<string>()
      for await (const [, record] of scanRecords(options)) {
        if (typeOk(record) && nameOk(record)) {
          const listed = toListed(record)
          emitted.add(memKey(listed.cid))
          yield listed
        }
      }
      if (!wantIndirect) return
      yield * indirect(emitted, options)
    },

    async * verify (options = {}) {
      const targets: Array<[string, PinRecord]> = []
      if (options.cids != null) {
        for (const cid of options.cids) {
          const record = await getRecord(cid)
          if (record == null) throw new NotPinnedError(`${cid.toString()} is not pinned`)
          targets.push([pinKey(cid), record])
        }
      }
      // A block shared by many pins is read and hashed once per verify run.
      const seen = new Map<string, BlockError | undefined>()
      const source = options.cids != null ? targets : scanRecords(options)
      for await (const [key, record] of source) {
        const bad: BadBlock[] = []
        for await (const cid of recordBlocks(key, record)) {
          options.signal?.throwIfAborted()
          const k = memKey(cid)
          let error: BlockError | undefined
          if (seen.has(k)) {
            error = seen.get(k)
          } else {
            error = await checkBlock(cid, options)
            seen.set(k, error)
          }
          if (error != null) bad.push({ cid, error })
        }
        yield { cid: CID.parse(record.cid), ok: bad.length === 0, bad }
      }
    },

    async update (from, to, options = {}) {
      const record = await getRecord(from)
      if (record == null) throw new NotPinnedError(`${from.toString()} is not pinned`)
      const addOptions: PinAddOptions = { recursive: record.type === 'recursive' }
      if (options.signal != null) addOptions.signal = options.signal
      if (record.name != null) addOptions.name = record.name
      if (record.metadata != null) addOptions.metadata = record.metadata
      // The new pin is durable before the old one goes, so a crash in between keeps both.
      const pin = await track(doAdd(to, addOptions))
      if (options.unpin !== false && pinKey(from) !== pinKey(to)) await track(doRm(from, { signal: options.signal }))
      return pin
    },

    async * reachable (options = {}) {
      // Recursive roots are the first CID of their own block list; direct pins have no list.
      for await (const [, record] of scanRecords(options)) {
        if (record.type === 'direct') yield CID.parse(record.cid)
      }
      for await (const chunk of pinBlocks.values()) {
        options.signal?.throwIfAborted()
        yield * decodeChunk(chunk)
      }
    }
  }
}
