import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import { join } from 'node:path'
import { NotFoundError } from 'interface-store'
import { base32upper } from 'multiformats/bases/base32'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { QuotaExceededError, StoreClosedError } from './errors.ts'
import { createDirectReader } from './direct-reader.ts'
import { createDirectWriter } from './direct-writer.ts'
import { atomicWriteFile, errnoCode, exists, fsyncPath, mapFsError, mapLevelError, mapLimit } from './fs-util.ts'
import type { BufferPool } from './buffer-pool.ts'
import type { DirectReader } from './direct-reader.ts'
import type { DirectWriter } from './direct-writer.ts'
import type { RepoBlockstore } from './types.ts'
import type { AbortOptions } from 'abort-error'
import type { InputPair, Pair } from 'interface-blockstore'

/** Where the blockstore keeps its counters and its dirty marker (a LevelDB sublevel in a repo). */
export interface BlockstoreMeta {
  get(key: string): Promise<string | undefined>
  put(key: string, value: string, options?: { sync?: boolean }): Promise<void>
  del(key: string, options?: { sync?: boolean }): Promise<void>
}

export interface BlockstoreInit {
  /** Folder of the flat files (`<repo>/blocks`). */
  path: string
  /** Quota: a put that would push the total past this many bytes is refused. */
  maxBytes?: number
  /** Counters and dirty marker; without it they live in small files inside `path`. */
  db?: BlockstoreMeta
  /** Parallel fsyncs in one sync pass. */
  syncConcurrency?: number
  /**
   * Write blocks of at least `directMinBytes` with O_DIRECT where the file system allows it
   * (src/store/direct-writer.ts). Default true.
   */
  directWrites?: boolean
  /**
   * Read blocks into `readBuffers` (aligned slots) with O_DIRECT where the file system allows it,
   * for `getPooled` callers that pass that pool (src/store/direct-reader.ts). Default true.
   */
  directReads?: boolean
}

/** Below this a block goes through the page cache: its padding and the extra syscall cost more than the copy saves. */
const DIRECT_MIN_BYTES = 64 * 1024
/**
 * Direct writes in flight at most: a replica fetch keeps 8 writes going and fills a ninth block
 * in a slot of its own (src/pinning/pool/transfer.ts), and an add runs beside it.
 */
const DIRECT_SLOTS = 12
/**
 * Direct reads out at most: a DAG sent to a member reads 8 blocks ahead and each is out until the
 * cipher has sealed it, a few more while the stream's window is full.
 */
const DIRECT_READ_SLOTS = 24

/** The flat-file blockstore, with a delete that reports what it freed (GC uses it). */
export interface FlatBlockstore extends RepoBlockstore {
  readonly path: string
  put(cid: CID, bytes: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>, options?: AbortOptions): Promise<CID>
  has(cid: CID, options?: AbortOptions): Promise<boolean>
  delete(cid: CID, options?: AbortOptions): Promise<void>
  /** Same as delete(), registered synchronously the same way; resolves to the bytes freed (0 when absent). */
  remove(cid: CID, options?: AbortOptions): Promise<number>
  getPooled(cid: CID, pool: BufferPool, options?: AbortOptions): Promise<Uint8Array>
  putNew(cid: CID, bytes: Uint8Array, options?: AbortOptions): Promise<boolean>
  /** Blocks written with O_DIRECT since open (0 where the file system refuses it). */
  readonly directWrites: number
  /** Blocks read with O_DIRECT since open. */
  readonly directReads: number
}

const SHARDING = '/repo/flatfs/shard/v1/next-to-last/2\n'
const RAW = 0x55
const SHA2_256 = 0x12
const SHA2_512 = 0x13
const IDENTITY = 0x00
// mtime and Date.now() come from the same clock, but allow for coarse timestamps and a slow write.
const VERIFY_SLACK_MS = 5_000

/** Kubo flatfs key: base32 (RFC 4648, upper, no padding) of the multihash, so CIDv0 and v1 share a block. */
export function multihashKey (cid: CID): string {
  return base32upper.baseEncode(cid.multihash.bytes)
}

function shardOf (key: string): string {
  return key.slice(-3, -1)
}

function noop (): void {}

/** A block's parts as given: an importer's leaf is the list of upload chunks it was cut from, written with one writev. */
async function collect (bytes: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  if (bytes instanceof Uint8Array) {
    return [bytes]
  }
  const chunks: Uint8Array[] = []
  for await (const chunk of bytes) {
    chunks.push(chunk)
  }
  return chunks
}

/** writev until every byte is down: a regular file takes all at once, but the call may stop short. */
async function writeParts (handle: fs.FileHandle, parts: Uint8Array[]): Promise<void> {
  let rest = parts.filter(p => p.byteLength > 0)
  while (rest.length > 0) {
    let { bytesWritten } = await handle.writev(rest)
    while (rest.length > 0 && bytesWritten >= (rest[0] as Uint8Array).byteLength) {
      bytesWritten -= (rest[0] as Uint8Array).byteLength
      rest = rest.slice(1)
    }
    if (bytesWritten > 0) rest = [(rest[0] as Uint8Array).subarray(bytesWritten), ...rest.slice(1)]
  }
}

function* once (bytes: Uint8Array): Generator<Uint8Array> {
  yield bytes
}

function createFileMeta (dir: string): BlockstoreMeta {
  const file = (key: string): string => join(dir, `.meta-${key}`)
  return {
    async get (key) {
      try {
        return await fs.readFile(file(key), 'utf8')
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') return undefined
        throw err
      }
    },
    async put (key, value) {
      await atomicWriteFile(file(key), value)
    },
    async del (key, options) {
      await fs.rm(file(key), { force: true })
      if (options?.sync === true) await fsyncPath(dir)
    }
  }
}

/** Checks a block file against its multihash; unknown hash functions are kept (cannot judge). */
function matchesMultihash (key: string, bytes: Uint8Array): boolean {
  const digest = Digest.decode(base32upper.baseDecode(key))
  let actual: Uint8Array
  if (digest.code === SHA2_256) {
    actual = createHash('sha256').update(bytes).digest()
  } else if (digest.code === SHA2_512) {
    actual = createHash('sha512').update(bytes).digest()
  } else if (digest.code === IDENTITY) {
    actual = bytes
  } else {
    return true
  }
  return Buffer.from(actual).equals(digest.digest)
}

interface StoredStat { blocks: number, bytes: number, syncedAt: number }

class FlatfsBlockstore implements FlatBlockstore {
  readonly path: string
  private readonly maxBytes: number
  private readonly meta: BlockstoreMeta
  private readonly syncConcurrency: number
  private readonly direct: DirectWriter | undefined
  private readonly directReader: DirectReader | undefined
  private opened = false
  private opening: Promise<void> | undefined
  private blocks = 0
  private bytes = 0
  private reserved = 0
  private readonly dirtyFiles = new Set<string>()
  private readonly dirtyDirs = new Set<string>()
  private readonly knownShards = new Set<string>()
  /**
   * Per-key chain of puts and deletes, so they apply in call order; reads of a key wait for it too,
   * as a direct write fills the block's own file (see `write`) and a delete is not done until unlinked.
   */
  private readonly chain = new Map<string, Promise<unknown>>()
  /** Start times of mutations in flight; a sync pass cannot vouch for files written after the oldest. */
  private readonly inflight = new Map<number, number>()
  private nextOpId = 0
  private markerSet = false
  private markerPromise: Promise<void> = Promise.resolve()
  private metaQueue: Promise<unknown> = Promise.resolve()
  private syncing: Promise<void> | null = null
  private queued: Promise<void> | null = null

  constructor (init: BlockstoreInit) {
    this.path = init.path
    this.maxBytes = init.maxBytes ?? Infinity
    this.meta = init.db ?? createFileMeta(init.path)
    this.syncConcurrency = init.syncConcurrency ?? 16
    this.direct = init.directWrites === false ? undefined : createDirectWriter({ slots: DIRECT_SLOTS })
    this.directReader = init.directReads === false ? undefined : createDirectReader({ slots: DIRECT_READ_SLOTS })
  }

  /**
   * Buffers for `getPooled` reads of bytes that only pass through (sent to a member): read with
   * O_DIRECT into aligned slots, past the page cache, where the file system allows it
   * (src/store/direct-reader.ts), else through the page cache into reused buffers.
   */
  get readBuffers (): BufferPool | undefined {
    return this.directReader
  }

  get directReads (): number {
    return this.directReader?.reads ?? 0
  }

  /** The direct writer's aligned slots, while it writes directly (src/store/direct-writer.ts). */
  get writeBuffers (): BufferPool | undefined {
    return this.direct?.enabled === true ? this.direct : undefined
  }

  get directWrites (): number {
    return this.direct?.written ?? 0
  }

  async open (): Promise<void> {
    if (this.opened) return
    this.opening ??= this.doOpen().finally(() => { this.opening = undefined })
    await this.opening
  }

  private async doOpen (): Promise<void> {
    await fs.mkdir(this.path, { recursive: true })
    if (!await exists(join(this.path, 'SHARDING'))) await atomicWriteFile(join(this.path, 'SHARDING'), SHARDING)
    const dirty = await this.meta.get('dirty')
    const statText = await this.meta.get('stat')
    const stored: StoredStat | undefined = statText == null ? undefined : JSON.parse(statText)
    if (dirty == null && stored != null) {
      this.blocks = stored.blocks
      this.bytes = stored.bytes
      // Restamp with this boot's clock: a box without an RTC may start with a clock behind the last
      // sync, and recovery compares block mtimes with this time.
      await this.meta.put('stat', JSON.stringify({ ...stored, syncedAt: Date.now() }), { sync: true })
    } else {
      // Unclean shutdown (or first open): blocks written since the last sync may be torn or empty.
      await this.recover(dirty == null ? undefined : (stored?.syncedAt ?? 0) - VERIFY_SLACK_MS)
      await this.meta.put('stat', JSON.stringify({ blocks: this.blocks, bytes: this.bytes, syncedAt: Date.now() }), { sync: true })
      await this.meta.del('dirty', { sync: true })
    }
    this.opened = true
  }

  /** Recounts every block; files modified at or after `verifySince` are re-hashed and dropped when wrong. */
  private async recover (verifySince: number | undefined): Promise<void> {
    let blocks = 0
    let bytes = 0
    const touched = new Set<string>()
    for (const shard of await this.shardDirs()) {
      const dir = join(this.path, shard)
      this.knownShards.add(shard)
      const names = await fs.readdir(dir)
      await mapLimit(names, 32, async (name) => {
        const file = join(dir, name)
        if (name.startsWith('.') && name.endsWith('.tmp')) {
          await fs.rm(file, { force: true })
          touched.add(dir)
          return
        }
        if (!name.endsWith('.data')) return
        const st = await fs.stat(file)
        if (verifySince != null && st.mtimeMs >= verifySince) {
          const key = name.slice(0, -'.data'.length)
          let ok = false
          try {
            ok = matchesMultihash(key, await fs.readFile(file))
          } catch {
            // unreadable or a name that is no multihash: treat as corrupt
          }
          if (!ok) {
            await fs.rm(file, { force: true })
            touched.add(dir)
            return
          }
        }
        blocks++
        bytes += st.size
      })
    }
    await mapLimit(touched, this.syncConcurrency, fsyncPath)
    this.blocks = blocks
    this.bytes = bytes
  }

  private async shardDirs (): Promise<string[]> {
    const entries = await fs.readdir(this.path, { withFileTypes: true })
    return entries.filter(e => e.isDirectory() && e.name.length === 2).map(e => e.name)
  }

  async close (): Promise<void> {
    if (!this.opened) return
    await Promise.allSettled([...this.chain.values()])
    await this.sync()
    await this.metaQueue
    this.direct?.unmap()
    this.directReader?.unmap()
    this.opened = false
  }

  private assertOpen (): void {
    if (!this.opened) throw new StoreClosedError()
  }

  private fileOf (key: string): string {
    return join(this.path, shardOf(key), `${key}.data`)
  }

  private enqueue<T> (key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chain.get(key)
    const p = prev == null ? fn() : prev.then(fn, fn)
    this.chain.set(key, p)
    const clean = (): void => {
      if (this.chain.get(key) === p) this.chain.delete(key)
    }
    p.then(clean, clean)
    return p
  }

  /** Once every put and delete of `key` issued so far has landed. */
  private async settled (key: string): Promise<void> {
    const pending = this.chain.get(key)
    if (pending != null) await pending.catch(noop)
  }

  private beginOp (): number {
    const id = this.nextOpId++
    this.inflight.set(id, Date.now())
    return id
  }

  private ensureDirtyMarker (): Promise<void> {
    if (this.markerSet) return this.markerPromise
    this.markerSet = true
    this.markerPromise = this.metaOp(async () => {
      try {
        await this.meta.put('dirty', '1', { sync: true })
      } catch (err) {
        throw mapLevelError(err, this.path)
      }
    })
    this.markerPromise.catch(() => { this.markerSet = false })
    return this.markerPromise
  }

  private metaOp<T> (fn: () => Promise<T>): Promise<T> {
    const p = this.metaQueue.then(fn)
    this.metaQueue = p.catch(noop)
    return p
  }

  private async ensureShard (shard: string): Promise<string> {
    const dir = join(this.path, shard)
    if (!this.knownShards.has(shard)) {
      try {
        await fs.mkdir(dir)
        this.dirtyDirs.add(this.path)
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') throw mapFsError(err, dir)
      }
      this.knownShards.add(shard)
    }
    return dir
  }

  async put (cid: CID, bytes: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>, _options?: AbortOptions): Promise<CID> {
    this.assertOpen()
    const key = multihashKey(cid)
    // chained at once, before the bytes are gathered, so a read issued after this call waits for the write
    const data = collect(bytes)
    data.catch(noop)
    await this.enqueue(key, async () => { await this.write(key, await data) })
    return cid
  }

  async putNew (cid: CID, bytes: Uint8Array, _options?: AbortOptions): Promise<boolean> {
    this.assertOpen()
    const key = multihashKey(cid)
    let wrote = false
    await this.enqueue(key, async () => { wrote = await this.write(key, [bytes]) })
    return wrote
  }

  /**
   * Writes the block unless its file exists; true when it wrote.
   *
   * A direct write goes to the block's own name, created exclusively, not to a temporary file
   * renamed into place: the `access` check and the `rename` were two more thread-pool round trips
   * per block (with the sync pass's `open`, `fsync`, `close`, five of the eight; replica fetches
   * measured the same speed either way, bench/results.md, but with fewer system calls). A torn
   * file is still never trusted: readers of the key wait for the write (`settled`),
   * and after a crash the dirty marker (set before the write) has recovery re-hash every file
   * written since the last sync. Buffered writes keep the temporary file, since their bytes reach
   * the disk only at the next sync pass.
   */
  private async write (key: string, data: Uint8Array[]): Promise<boolean> {
    const file = this.fileOf(key)
    let size = 0
    for (const part of data) size += part.byteLength
    // past the quota only a block already stored may "succeed", so that is checked first
    const writer = size >= DIRECT_MIN_BYTES && this.direct?.enabled === true && this.fits(size) ? this.direct : undefined
    if (writer == null) {
      if (await exists(file)) return false
      if (!this.fits(size)) {
        throw new QuotaExceededError(`storing ${size} more bytes would exceed the storage quota of ${this.maxBytes} bytes (${this.bytes} used)`)
      }
    }
    this.reserved += size
    const op = this.beginOp()
    try {
      await this.ensureDirtyMarker()
      const dir = await this.ensureShard(shardOf(key))
      let direct = false
      if (writer != null) {
        try {
          direct = await writer.write(file, data, size)
        } catch (err) {
          if (errnoCode(err) === 'EEXIST') return false
          throw mapFsError(err, file)
        }
        // declined (no slot free, O_DIRECT refused): buffered, which checks for the file first
        if (!direct && await exists(file)) return false
      }
      if (!direct) await this.writeBuffered(dir, key, file, data)
      this.blocks++
      this.bytes += size
      // a direct write is durable already: only its directory entry is left to the sync pass
      if (!direct) this.dirtyFiles.add(file)
      this.dirtyDirs.add(dir)
      return true
    } finally {
      this.reserved -= size
      this.inflight.delete(op)
    }
  }

  private fits (size: number): boolean {
    return this.bytes + this.reserved + size <= this.maxBytes
  }

  /** Through the page cache into a temporary file renamed into place, so the block's name never holds a partial file. */
  private async writeBuffered (dir: string, key: string, file: string, data: Uint8Array[]): Promise<void> {
    const tmp = join(dir, `.${key}.${randomBytes(4).toString('hex')}.tmp`)
    try {
      const handle = await fs.open(tmp, 'wx')
      try {
        await writeParts(handle, data)
      } finally {
        await handle.close()
      }
      await fs.rename(tmp, file)
    } catch (err) {
      await fs.rm(tmp, { force: true }).catch(noop)
      throw mapFsError(err, file)
    }
  }

  async * putMany (source: Iterable<InputPair> | AsyncIterable<InputPair>, options?: AbortOptions): AsyncGenerator<CID> {
    for await (const { cid, bytes } of source) {
      yield await this.put(cid, bytes, options)
    }
  }

  delete (cid: CID, options?: AbortOptions): Promise<void> {
    return this.remove(cid, options).then(noop)
  }

  remove (cid: CID, _options?: AbortOptions): Promise<number> {
    this.assertOpen()
    const key = multihashKey(cid)
    // Chained before the first await, so a has/get/put for this key issued after this call waits for the unlink.
    return this.enqueue(key, async () => await this.unlink(key))
  }

  private async unlink (key: string): Promise<number> {
    const file = this.fileOf(key)
    const op = this.beginOp()
    try {
      let size: number
      try {
        size = (await fs.stat(file)).size
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') return 0
        throw err
      }
      await this.ensureDirtyMarker()
      try {
        await fs.unlink(file)
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') return 0
        throw err
      }
      this.blocks--
      this.bytes -= size
      this.dirtyFiles.delete(file)
      this.dirtyDirs.add(join(this.path, shardOf(key)))
      return size
    } finally {
      this.inflight.delete(op)
    }
  }

  async * deleteMany (source: Iterable<CID> | AsyncIterable<CID>, options?: AbortOptions): AsyncGenerator<CID> {
    for await (const cid of source) {
      await this.delete(cid, options)
      yield cid
    }
  }

  async has (cid: CID, _options?: AbortOptions): Promise<boolean> {
    this.assertOpen()
    const key = multihashKey(cid)
    await this.settled(key)
    return await exists(this.fileOf(key))
  }

  async size (cid: CID, _options?: AbortOptions): Promise<number | undefined> {
    this.assertOpen()
    const key = multihashKey(cid)
    await this.settled(key)
    try {
      return (await fs.stat(this.fileOf(key))).size
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined
      throw err
    }
  }

  /** The file of a block once any delete of it in flight has landed. */
  private async readablePath (cid: CID): Promise<string> {
    this.assertOpen()
    const key = multihashKey(cid)
    await this.settled(key)
    return this.fileOf(key)
  }

  private async read (cid: CID): Promise<Uint8Array> {
    const file = await this.readablePath(cid)
    try {
      return await fs.readFile(file)
    } catch (err) {
      throw notFound(err, cid)
    }
  }

  async * get (cid: CID, _options?: AbortOptions): AsyncGenerator<Uint8Array> {
    yield await this.read(cid)
  }

  async getPooled (cid: CID, pool: BufferPool, _options?: AbortOptions): Promise<Uint8Array> {
    const file = await this.readablePath(cid)
    if (pool === this.directReader) {
      let bytes: Uint8Array | undefined
      try {
        bytes = await this.directReader.read(file)
      } catch (err) {
        throw notFound(err, cid)
      }
      // undefined: no slot free, too large, changed while read, or O_DIRECT refused; read as any pooled read
      if (bytes != null) return bytes
    }
    let handle: fs.FileHandle
    try {
      handle = await fs.open(file, 'r')
    } catch (err) {
      throw notFound(err, cid)
    }
    try {
      const { size } = await handle.stat()
      const bytes = pool.take(size)
      let filled = 0
      try {
        while (filled < size) {
          const { bytesRead } = await handle.read(bytes, filled, size - filled, filled)
          if (bytesRead === 0) break
          filled += bytesRead
        }
      } catch (err) {
        pool.release(bytes)
        throw err
      }
      if (filled !== size) {
        pool.release(bytes)
        throw new Error(`block ${cid} shrank while it was read (${filled} of ${size} bytes)`)
      }
      return bytes
    } finally {
      await handle.close()
    }
  }

  async * getMany (source: Iterable<CID> | AsyncIterable<CID>, _options?: AbortOptions): AsyncGenerator<Pair> {
    for await (const cid of source) {
      yield { cid, bytes: once(await this.read(cid)) }
    }
  }

  async * getAll (options?: AbortOptions): AsyncGenerator<Pair> {
    for await (const cid of this.cids(options)) {
      let bytes: Uint8Array
      try {
        bytes = await this.read(cid)
      } catch (err) {
        if (err instanceof NotFoundError) continue
        throw err
      }
      yield { cid, bytes: once(bytes) }
    }
  }

  async * cids (options?: AbortOptions): AsyncGenerator<CID> {
    this.assertOpen()
    for (const shard of await this.shardDirs()) {
      options?.signal?.throwIfAborted()
      let names: string[]
      try {
        names = await fs.readdir(join(this.path, shard))
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') continue
        throw err
      }
      for (const name of names) {
        if (name.startsWith('.') || !name.endsWith('.data')) continue
        let digest
        try {
          digest = Digest.decode(base32upper.baseDecode(name.slice(0, -'.data'.length)))
        } catch {
          continue
        }
        yield CID.createV1(RAW, digest)
      }
    }
  }

  stat (): { blocks: number, bytes: number } {
    return { blocks: this.blocks, bytes: this.bytes }
  }

  sync (_options?: AbortOptions): Promise<void> {
    if (this.syncing == null) return this.startPass()
    // A pass is running and may have missed the caller's writes: share one follow-up pass.
    this.queued ??= this.syncing.then(noop, noop).then(async () => {
      this.queued = null
      await (this.syncing ?? this.startPass())
    })
    return this.queued
  }

  private startPass (): Promise<void> {
    const p = this.runPass()
    this.syncing = p
    const clear = (): void => {
      if (this.syncing === p) this.syncing = null
    }
    p.then(clear, clear)
    return p
  }

  private async runPass (): Promise<void> {
    if (!this.opened) return
    const files = [...this.dirtyFiles]
    const dirs = [...this.dirtyDirs]
    this.dirtyFiles.clear()
    this.dirtyDirs.clear()
    let syncedAt = Date.now()
    for (const started of this.inflight.values()) syncedAt = Math.min(syncedAt, started)
    try {
      await mapLimit(files, this.syncConcurrency, async (file) => {
        try {
          await fsyncPath(file)
        } catch (err) {
          // Deleted since: nothing to make durable but its directory entry, which dirs covers.
          if (errnoCode(err) !== 'ENOENT') throw err
        }
      })
      // Directories after files: a rename is only durable once the directory is synced.
      await mapLimit(dirs, this.syncConcurrency, fsyncPath)
    } catch (err) {
      for (const f of files) this.dirtyFiles.add(f)
      for (const d of dirs) this.dirtyDirs.add(d)
      throw mapFsError(err, this.path)
    }
    await this.metaOp(async () => {
      const clean = this.inflight.size === 0 && this.dirtyFiles.size === 0 && this.dirtyDirs.size === 0
      const clearMarker = clean && this.markerSet
      // Flipped in the same turn as the check: a write starting from now on queues a new marker after this del.
      if (clearMarker) this.markerSet = false
      const stat = JSON.stringify({ blocks: this.blocks, bytes: this.bytes, syncedAt })
      try {
        await this.meta.put('stat', stat, { sync: !clearMarker })
        if (clearMarker) await this.meta.del('dirty', { sync: true })
      } catch (err) {
        // The marker may still be on disk: keep treating the store as dirty.
        if (clearMarker) this.markerSet = true
        throw mapLevelError(err, this.path)
      }
    })
  }
}

/** A missing block file as the store's NotFoundError; other errors unchanged. */
function notFound (err: unknown, cid: CID): unknown {
  return errnoCode(err) === 'ENOENT' ? new NotFoundError(`block ${cid} not found`) : err
}

export function createBlockstore (init: BlockstoreInit): FlatBlockstore {
  return new FlatfsBlockstore(init)
}
