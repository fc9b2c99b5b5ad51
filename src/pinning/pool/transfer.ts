import * as dagCbor from '@ipld/dag-cbor'
import { varint } from 'multiformats'
import { Uint8ArrayList } from 'uint8arraylist'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { DEFAULT_MAX_BLOCK_BYTES, encodeCarHeader, exportCar } from '../../content/car.ts'
import { blockLinks, copyInto, IDENTITY_CODE, readBlock, readBlockPooled, verifyBlock, verifyBlockOffThread } from '../../content/blocks.ts'
import { BlockHashMismatchError, BlockTooLargeError, CarInvalidError, CarTruncatedError } from '../../content/errors.ts'
import { PoolProtocolError, TransferIncompleteError, TransferTooLargeError } from '../errors.ts'
import { abortStream, DAG_PROTOCOL, decodeDagRequest, encodeMessage, messageStream, MESSAGE_VERSION, parseCids } from './messages.ts'
import type { BufferPool } from '../../store/buffer-pool.ts'
import type { SealWatch } from '../../net/seal-watch.ts'
import type { Lease, RepoBlockstore } from '../../store/types.ts'
import type { AbortOptions, Libp2p, PeerId, Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'

/** Small sections gathered before one `send`: fewer, larger muxer frames move a many-block DAG faster. */
const SEND_CHUNK_BYTES = 256 * 1024
/** Blocks this large are sent as they are; smaller ones are copied into a batch. */
export const DIRECT_SEND_BYTES = SEND_CHUNK_BYTES / 4
/** Small sections waiting when a big block comes go out in its send, joined, up to this much. */
const MERGE_BYTES = 4096

export interface DagServerComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle'>
  blockstore: Pick<RepoBlockstore, 'get' | 'getPooled'>
  isMember(peer: PeerId): boolean
  /**
   * With `sealWatch` (and a store that reads into pooled buffers): blocks are read into these and
   * each is given back once the connection's cipher has sealed all of it, so a transfer reuses a
   * few dozen buffers instead of allocating one per block (src/net/seal-watch.ts).
   */
  buffers?: BufferPool
  sealWatch?: SealWatch
}

/** Buffers a DAG stream reads its blocks into, the store's read into them and the watch that gives them back. */
interface SendBuffers {
  pool: BufferPool
  sealWatch: SealWatch
  getPooled: NonNullable<RepoBlockstore['getPooled']>
}

export interface DagServerInit {
  /** Concurrent DAG streams one peer may open. */
  maxInboundStreams?: number
}

export interface DagServer {
  start(): Promise<void>
  stop(): Promise<void>
}

/** Holder's side of `/pinbox/dag/1.0.0`: streams a CAR of the asked DAGs (or single blocks) to a member. */
export function createDagServer (components: DagServerComponents, init: DagServerInit = {}): DagServer {
  const { libp2p, blockstore } = components
  let started = false
  const controller = new AbortController()
  const reuse: SendBuffers | undefined = components.buffers != null && components.sealWatch != null && blockstore.getPooled != null
    ? { pool: components.buffers, sealWatch: components.sealWatch, getPooled: blockstore.getPooled.bind(blockstore) }
    : undefined
  // What the DAG walk reads through. Pooled for raw blocks only: nothing decoded from their bytes
  // outlives the send, while a dag-pb or dag-cbor node's link CIDs are views of its buffer and
  // sit on the walk's stack after it was sent.
  const walkStore: Pick<RepoBlockstore, 'get'> = reuse == null
    ? blockstore
    : {
        async * get (cid, options) {
          yield cid.code === raw.code ? await reuse.getPooled(cid, reuse.pool, options) : await readBlock(blockstore, cid, options)
        }
      }

  async function * blocksCar (cids: CID[], options: AbortOptions): AsyncGenerator<Uint8Array> {
    yield encodeCarHeader(cids)
    for (const cid of cids) {
      // single blocks are sent as they are, never decoded: any codec can use a pooled buffer
      const bytes = await readBlockPooled(blockstore, cid, reuse?.pool, options)
      yield sectionPrefix(cid, bytes.byteLength)
      yield bytes
    }
  }

  async function onStream (stream: Stream, connection: { remotePeer: PeerId }): Promise<void> {
    if (!components.isMember(connection.remotePeer)) {
      stream.abort(new Error('not-a-member'))
      return
    }
    const signal = controller.signal
    try {
      const lp = messageStream(stream)
      const request = decodeDagRequest((await lp.read({ signal })).subarray())
      lp.unwrap()
      const source = request.blocks.length > 0
        ? blocksCar(parseCids(request.blocks), { signal })
        : exportCar(walkStore, parseCids(request.roots), { signal })
      await sendAll(stream, source, { signal }, reuse)
      await stream.close({ signal })
    } catch (err) {
      abortStream(stream, err)
    }
  }

  return {
    async start () {
      if (started) return
      await libp2p.handle(DAG_PROTOCOL, onStream, {
        maxInboundStreams: init.maxInboundStreams ?? 8,
        // a relay with raised limits for members carries replicas; the relay decides what fits
        runOnLimitedConnection: true
      })
      started = true
    },
    async stop () {
      if (!started) return
      started = false
      controller.abort()
      await libp2p.unhandle(DAG_PROTOCOL)
    }
  }
}

/** A CAR section is varint(length of CID + block) ‖ CID ‖ block; this is everything but the block. */
function sectionPrefix (cid: CID, blockLength: number): Uint8Array {
  const cidBytes = cid.bytes
  const lengthBytes = varint.encodingLength(cidBytes.length + blockLength)
  const out = new Uint8Array(lengthBytes + cidBytes.length)
  varint.encodeTo(cidBytes.length + blockLength, out)
  out.set(cidBytes, lengthBytes)
  return out
}

/**
 * Sends `source` over `stream`. With `reuse`, every chunk is offered back to its pool (which
 * ignores chunks not its own): one sent as it is once the cipher has sealed it, one copied into a
 * batch at once.
 */
async function sendAll (stream: Stream, source: AsyncIterable<Uint8Array>, options: AbortOptions, reuse?: SendBuffers): Promise<void> {
  let parts: Uint8Array[] = []
  let length = 0
  /** Sends `out`; `block`, when given, is the buffer in it to watch (otherwise `out` itself is). */
  const send = async (out: Uint8Array | Uint8ArrayList, block = out instanceof Uint8Array ? out : undefined): Promise<void> => {
    // watched before the send, which may seal it at once
    if (reuse != null && block != null) reuse.sealWatch.watch(block, () => { reuse.pool.release(block) })
    // past the muxer's window the CAR waits in the walk, not in the stream's write buffer
    if (!stream.send(out)) await drained(stream, options)
  }
  /**
   * The small sections waiting, in one array: a lone one as it is (then sent and watched itself),
   * or copied, when their pooled buffers go back at once.
   */
  const joined = (copy: boolean): Uint8Array => {
    const copied = copy || parts.length > 1
    const out = copied ? Buffer.concat(parts, length) : parts[0] as Uint8Array
    if (copied && reuse != null) for (const part of parts) reuse.pool.release(part)
    parts = []
    length = 0
    return out
  }
  const flush = async (): Promise<void> => {
    if (length > 0) await send(joined(false))
  }
  for await (const chunk of source) {
    if (chunk.byteLength >= DIRECT_SEND_BYTES) {
      // A big block goes as it is (copying it into a batch would cost more than its own frame),
      // with what waits before it, its section's prefix at least, in the same send: one muxer
      // frame per block instead of two, and one window update back instead of two.
      if (length === 0) await send(chunk)
      else if (length <= MERGE_BYTES) await send(new Uint8ArrayList(joined(true), chunk), chunk)
      else {
        await flush()
        await send(chunk)
      }
      continue
    }
    parts.push(chunk)
    length += chunk.byteLength
    if (length >= SEND_CHUNK_BYTES) await flush()
  }
  await flush()
}

/**
 * Resolves once the stream takes writes again. Not `stream.onDrain()`: @libp2p/utils 7 keeps the
 * first drain's promise, resolved, for good, so every later wait returned at once and the whole
 * CAR piled up in the write buffer. Loops because a drain's queued flush can fill the window again.
 */
async function drained (stream: Stream, options: AbortOptions): Promise<void> {
  while (stream.writableNeedsDrain) {
    options.signal?.throwIfAborted()
    await new Promise<void>((resolve, reject) => {
      const done = (): void => {
        stream.removeEventListener('drain', onDrain)
        stream.removeEventListener('close', onClose)
        options.signal?.removeEventListener('abort', onAbort)
      }
      const onDrain = (): void => { done(); resolve() }
      const onClose = (evt: Event): void => {
        done()
        reject((evt as StreamCloseEvent).error ?? new TransferIncompleteError('the DAG stream closed while sending'))
      }
      const onAbort = (): void => { done(); reject(options.signal?.reason) }
      stream.addEventListener('drain', onDrain)
      stream.addEventListener('close', onClose)
      options.signal?.addEventListener('abort', onAbort)
    })
  }
}

/** Received bytes waiting to be parsed past which the stream is paused (no more yamux window granted). */
const READ_HIGH_WATER = 4 * 1024 * 1024
const READ_LOW_WATER = 1024 * 1024
/**
 * While paused, the window granted before the pause still arrives into the stream's own buffer
 * (yamux grows a stream's window to 16 MiB); past this the stream resets itself.
 */
const PAUSED_BUFFER_BYTES = 32 * 1024 * 1024
/** Block writes in flight at once: the store's latency overlaps without holding much. */
const WRITE_CONCURRENCY = 8
/** Longer than any CID this node can check (a CIDv1 with a 64-byte digest is ~70 bytes). */
const MAX_CID_BYTES = 512
/**
 * Block bytes written between two sync passes started during the transfer. The caller's pin syncs
 * every block before its record is written; started as the blocks land, those passes leave it only
 * the last few. Measured on two members, 256 MiB, when the passes still fsynced every block file:
 * without them the pin's sync took 28 ms after the last block, ~3 % of the transfer, while the
 * transfer itself left a core partly idle. Big blocks are now durable as written (O_DSYNC,
 * src/store/direct-writer.ts), so a pass has their directories left: a 256 MiB fetch made 250
 * directory fsyncs for 226 directories (strace), a directory touched again after its pass synced
 * twice. Not re-measured without the passes since.
 */
const SYNC_EVERY_BYTES = 32 * 1024 * 1024

export interface FetchDagComponents {
  libp2p: Pick<Libp2p, 'dialProtocol'>
  blockstore: Pick<RepoBlockstore, 'put' | 'has' | 'delete' | 'putNew'> & Partial<Pick<RepoBlockstore, 'sync'>>
  /**
   * Reusable buffers for the received blocks, each given back once `put` has returned (or at once
   * when the block is refused): only for a store that is done with a block's bytes by then (the
   * repo's stores, whose own `writeBuffers` are best). Without it every block gets a buffer of its own.
   */
  buffers?: BufferPool
}

export interface FetchDagOptions extends AbortOptions {
  /** Whole DAGs to fetch (the holder walks them). */
  roots?: CID[]
  /** Or single blocks (repair). */
  blocks?: CID[]
  /** Block bytes the transfer may bring; past it the stream is aborted. */
  maxBytes: number
  /** Every block written is added to it, so GC spares it until the caller's pin holds. */
  lease: Lease
  /** Replace blocks already stored (repair of corrupt copies). */
  overwrite?: boolean
  /** Larger blocks are refused before their bytes are buffered. Default 4 MiB. */
  maxBlockBytes?: number
}

/** One fetched root's DAG: its distinct blocks in `walkDag` order (what a pin record lists), each hashed on arrival. */
export interface FetchedDag {
  root: CID
  blocks: Array<{ cid: CID, size: number }>
  bytes: number
}

export interface FetchDagResult {
  /** Blocks this transfer wrote (those already stored are not counted). */
  blocks: number
  /** Block bytes received. */
  bytes: number
  /** One per asked root, in the order asked; empty when single blocks were asked. */
  dags: FetchedDag[]
}

interface Received {
  cid: CID
  size: number
  links: CID[]
}

/**
 * Requester's side of `/pinbox/dag/1.0.0`: pulls a CAR from `peer` and stores it as it streams,
 * each block re-hashed first and accepted only when an asked root or a block already received
 * links to it, so the transfer proves each DAG complete without reading it back. The stream is
 * read with bounded buffering (paused while a few MiB wait), blocks are written several at a
 * time. On any failure the blocks this transfer added are deleted again, so a lying or
 * oversized transfer leaves nothing behind. Sync passes are started as blocks land, but the
 * transfer does not wait for them: the caller's pin syncs before its record is written.
 */
export async function fetchDag (components: FetchDagComponents, peer: PeerId, options: FetchDagOptions): Promise<FetchDagResult> {
  const { libp2p, blockstore } = components
  const { lease, maxBytes, signal } = options
  const maxBlockBytes = options.maxBlockBytes ?? DEFAULT_MAX_BLOCK_BYTES
  const roots = options.roots ?? []
  const asked = options.blocks ?? []
  const followLinks = asked.length === 0
  const written: CID[] = []
  const received = new Map<string, Received>()
  // CIDs named by the request or linked from a received block, not received yet
  const expected = new Map<string, CID>()
  let bytes = 0
  let blocks = 0

  const expect = (cid: CID): void => {
    const key = cid.toString()
    if (received.has(key) || expected.has(key)) return
    if (cid.multihash.code === IDENTITY_CODE) {
      // its bytes are in the CID: nothing to send, but its links are part of the DAG
      const digest = cid.multihash.digest
      const links = followLinks ? blockLinks(cid, digest) : []
      received.set(key, { cid, size: 0, links })
      for (const link of links) expect(link)
      return
    }
    expected.set(key, cid)
  }
  for (const cid of followLinks ? roots : asked) expect(cid)

  const inFlight = new Set<Promise<void>>()
  let writeError: unknown
  let unsynced = 0
  const wrote = (cid: CID, size: number): void => {
    written.push(cid)
    unsynced += size
    if (unsynced < SYNC_EVERY_BYTES || blockstore.sync == null) return
    unsynced = 0
    // not awaited: a failure here comes back from the caller's own sync of the same files
    blockstore.sync().catch(() => {})
  }
  const store = async (cid: CID, block: Uint8Array, check: Promise<boolean> | undefined, index: number): Promise<void> => {
    try {
      if (check != null && !await check) throw new BlockHashMismatchError(cid, index)
      lease.add(cid)
      if (options.overwrite === true) {
        await blockstore.delete(cid)
        await blockstore.put(cid, block)
        wrote(cid, block.byteLength)
      } else if (blockstore.putNew != null) {
        if (await blockstore.putNew(cid, block)) wrote(cid, block.byteLength)
      } else if (!await blockstore.has(cid)) {
        await blockstore.put(cid, block)
        wrote(cid, block.byteLength)
      }
    } finally {
      components.buffers?.release(block)
    }
  }
  const schedule = async (cid: CID, block: Uint8Array, check: Promise<boolean> | undefined, index: number): Promise<void> => {
    while (inFlight.size >= WRITE_CONCURRENCY) await Promise.race(inFlight)
    if (writeError != null) throw writeError
    const p: Promise<void> = store(cid, block, check, index)
      .catch((err: unknown) => { writeError ??= err })
      .finally(() => { inFlight.delete(p) })
    inFlight.add(p)
  }

  const stream = await libp2p.dialProtocol(peer, DAG_PROTOCOL, { signal, runOnLimitedConnection: true })
  // listening before the request goes out, so nothing the holder sends waits unbounded
  const reader = boundedReader(stream, signal)
  try {
    const body = encodeMessage({ v: MESSAGE_VERSION, roots: roots.map(String), blocks: asked.map(String) })
    const prefix = new Uint8Array(varint.encodingLength(body.length))
    varint.encodeTo(body.length, prefix)
    stream.send(Buffer.concat([prefix, body]))
    // our half is done; the holder answers with the CAR and closes its half
    await stream.close({ signal })

    const car = new SectionReader(reader)
    await readCarHeader(car)
    while (true) {
      signal?.throwIfAborted()
      const length = await car.varint()
      if (length == null) break
      if (length > maxBlockBytes + MAX_CID_BYTES) {
        const cid = CID.decodeFirst(await car.peek(MAX_CID_BYTES))[0]
        throw new BlockTooLargeError(cid, length - cid.bytes.length, maxBlockBytes)
      }
      if (!await car.fill(length)) throw new CarTruncatedError(blocks)
      const section = car.takeParts(length)
      let cid: CID
      let parts: Uint8Array[]
      try {
        const head = headOf(section, Math.min(length, MAX_CID_BYTES))
        const cidLength = head.byteLength - CID.decodeFirst(head)[1].byteLength
        // a copy: a decoded CID's multihash is a view that would keep its chunk alive for as long as the CID lives
        cid = CID.decode(new Uint8Array(head.subarray(0, cidLength)))
        parts = dropBytes(section, cidLength)
      } catch (err) {
        throw new CarInvalidError(`a section does not start with a CID: ${(err as Error).message}`, { cause: err })
      }
      const blockLength = length - cid.bytes.byteLength
      if (blockLength > maxBlockBytes) throw new BlockTooLargeError(cid, blockLength, maxBlockBytes)
      const key = cid.toString()
      if (!expected.has(key)) {
        throw new PoolProtocolError(`the holder sent ${key}, which no asked DAG links to (or sent it twice)`)
      }
      // Copied out of the received frames at once, so they die young (a scavenge frees them) instead of
      // living on as views until the block is written; the copy is then hashed in one piece.
      const block = copyInto(components.buffers?.take(blockLength) ?? new Uint8Array(blockLength), parts)
      let scheduled = false
      try {
        // A raw leaf links nowhere, so nothing later waits on its bytes: it is hashed on the thread
        // pool while this loop goes on reading, and written only once its hash matched. Other blocks
        // are checked here first, as their links decide what may come next.
        const check = cid.code === raw.code ? verifyBlockOffThread(cid, block) : undefined
        // awaited by the write; this keeps a refusal before then from being an unhandled rejection
        check?.catch(() => {})
        if (check == null && !await verifyBlock(cid, block)) throw new BlockHashMismatchError(cid, blocks)
        bytes += blockLength
        if (bytes > maxBytes) throw new TransferTooLargeError(maxBytes)
        expected.delete(key)
        // link CIDs decoded from the block are views of it; copies, as the block's buffer is reused once written
        const links = followLinks && cid.code !== raw.code
          ? blockLinks(cid, block).map(link => CID.decode(new Uint8Array(link.bytes)))
          : []
        received.set(key, { cid, size: blockLength, links })
        for (const link of links) expect(link)
        blocks++
        // never an identity CID: expect() files those as received, so a section of one is refused above
        await schedule(cid, block, check, blocks - 1)
        scheduled = true
      } finally {
        // a scheduled block's buffer goes back once written; a refused one at once (a store's
        // slots are not collected like other buffers: one never given back is lost to it)
        if (!scheduled) components.buffers?.release(block)
      }
    }
    await Promise.all(inFlight)
    if (writeError != null) throw writeError
    if (expected.size > 0) {
      throw new TransferIncompleteError(`the holder did not send ${expected.size} of the asked blocks (first: ${[...expected.keys()][0] ?? ''})`)
    }
    const dags = followLinks ? roots.map(root => walkOrder(received, root)) : []
    return { blocks: written.length, bytes, dags }
  } catch (err) {
    abortStream(stream, err)
    await Promise.allSettled(inFlight)
    // an overwrite (repair) must not delete the good copies it already placed
    if (options.overwrite !== true) {
      await Promise.allSettled(written.map(async cid => { await blockstore.delete(cid) }))
    }
    throw err
  } finally {
    reader.close()
  }
}

/** `walkDag`'s order over the received blocks: depth-first pre-order, each distinct CID once, identity CIDs left out. */
function walkOrder (received: ReadonlyMap<string, Received>, root: CID): FetchedDag {
  const seen = new Set<string>()
  const stack: CID[] = [root]
  const blocks: FetchedDag['blocks'] = []
  let bytes = 0
  while (stack.length > 0) {
    const cid = stack.pop() as CID
    const key = cid.toString()
    if (seen.has(key)) continue
    seen.add(key)
    const node = received.get(key)
    if (node == null) throw new TransferIncompleteError(`the holder did not send ${key}`)
    for (let i = node.links.length - 1; i >= 0; i--) stack.push(node.links[i] as CID)
    if (cid.multihash.code !== IDENTITY_CODE) {
      blocks.push({ cid: node.cid, size: node.size })
      bytes += node.size
    }
  }
  return { root, blocks, bytes }
}

/** The first `n` bytes of `parts` in one array (a view when the first part holds them). */
function headOf (parts: Uint8Array[], n: number): Uint8Array {
  const first = parts[0]
  if (first != null && first.byteLength >= n) return first.subarray(0, n)
  const out = new Uint8Array(n)
  let filled = 0
  for (const part of parts) {
    if (filled >= n) break
    const piece = part.subarray(0, n - filled)
    out.set(piece, filled)
    filled += piece.byteLength
  }
  return out.subarray(0, filled)
}

/** `parts` without their first `n` bytes, as views. */
function dropBytes (parts: Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = []
  let skip = n
  for (const part of parts) {
    if (skip >= part.byteLength) {
      skip -= part.byteLength
      continue
    }
    out.push(skip > 0 ? part.subarray(skip) : part)
    skip = 0
  }
  return out
}

async function readCarHeader (car: SectionReader): Promise<void> {
  const length = await car.varint()
  if (length == null || !await car.fill(length)) throw new CarInvalidError('no complete header')
  let header: any
  try {
    header = dagCbor.decode(car.take(length))
  } catch (err) {
    throw new CarInvalidError(`undecodable header: ${(err as Error).message}`, { cause: err })
  }
  if (header?.version !== 1 || !Array.isArray(header.roots)) throw new CarInvalidError('not a CARv1 header')
}

interface ChunkSource {
  /** The next received chunk, or undefined at the end of the stream. */
  next(): Promise<Uint8Array | undefined>
}

/**
 * Reads CAR varints and sections across received chunks: a section inside one chunk is a view of
 * it, one spanning chunks is copied once into its own buffer (so no chunk outlives its section).
 */
class SectionReader {
  private readonly source: ChunkSource
  private readonly chunks: Uint8Array[] = []
  /** Offset into chunks[0]. */
  private offset = 0
  private available = 0
  private ended = false

  constructor (source: ChunkSource) {
    this.source = source
  }

  /** True once `n` bytes are buffered; false when the stream ended first. */
  async fill (n: number): Promise<boolean> {
    while (this.available < n) {
      if (this.ended) return false
      const chunk = await this.source.next()
      if (chunk == null) {
        this.ended = true
        return false
      }
      if (chunk.byteLength === 0) continue
      this.chunks.push(chunk)
      this.available += chunk.byteLength
    }
    return true
  }

  private byteAt (i: number): number {
    let at = i + this.offset
    for (const chunk of this.chunks) {
      if (at < chunk.byteLength) return chunk[at] as number
      at -= chunk.byteLength
    }
    throw new RangeError('read past the buffered bytes')
  }

  /** An unsigned varint; undefined at a clean end of the stream (none of its bytes sent). */
  async varint (): Promise<number | undefined> {
    let value = 0
    for (let i = 0; i < 8; i++) {
      if (!await this.fill(i + 1)) {
        if (i === 0) return undefined
        throw new CarTruncatedError(0)
      }
      const byte = this.byteAt(i)
      value += (byte & 0x7f) * 2 ** (7 * i)
      if (byte < 0x80) {
        this.consume(i + 1)
        return value
      }
    }
    throw new CarInvalidError('a varint longer than 8 bytes')
  }

  /** Up to `n` bytes, copied, without consuming them. */
  async peek (n: number): Promise<Uint8Array> {
    await this.fill(n)
    const out = new Uint8Array(Math.min(n, this.available))
    for (let i = 0; i < out.length; i++) out[i] = this.byteAt(i)
    return out
  }

  /** `n` buffered bytes as views of the chunks they arrived in (call `fill(n)` first). */
  takeParts (n: number): Uint8Array[] {
    const out: Uint8Array[] = []
    let left = n
    while (left > 0) {
      const chunk = this.chunks[0] as Uint8Array
      const part = chunk.subarray(this.offset, this.offset + Math.min(left, chunk.byteLength - this.offset))
      out.push(part)
      left -= part.byteLength
      this.consume(part.byteLength)
    }
    return out
  }

  /** `n` buffered bytes in one array (call `fill(n)` first). */
  take (n: number): Uint8Array {
    const first = this.chunks[0]
    if (first != null && first.byteLength - this.offset >= n) {
      const out = first.subarray(this.offset, this.offset + n)
      this.consume(n)
      return out
    }
    const out = Buffer.allocUnsafe(n)
    let filled = 0
    while (filled < n) {
      const chunk = this.chunks[0] as Uint8Array
      const part = chunk.subarray(this.offset, this.offset + Math.min(n - filled, chunk.byteLength - this.offset))
      out.set(part, filled)
      filled += part.byteLength
      this.consume(part.byteLength)
    }
    return out
  }

  private consume (n: number): void {
    this.available -= n
    this.offset += n
    while (this.chunks.length > 0 && this.offset >= (this.chunks[0] as Uint8Array).byteLength) {
      this.offset -= (this.chunks.shift() as Uint8Array).byteLength
    }
  }
}

/**
 * The stream's chunks with at most a few MiB waiting: past the high-water mark the stream is
 * paused, so yamux stops granting window and the holder's `send` reports a full buffer. The end
 * is the stream's 'end' event (its buffer drained after the remote closed), never its 'close' or
 * 'remoteCloseWrite', which can come while paused with data still buffered.
 */
function boundedReader (stream: Stream, signal?: AbortSignal): ChunkSource & { close(): void } {
  const queue: Uint8Array[] = []
  let queued = 0
  let ended = false
  let failure: unknown
  let resuming = false
  let wake: (() => void) | undefined
  const notify = (): void => {
    const w = wake
    wake = undefined
    w?.()
  }
  const onMessage = (evt: StreamMessageEvent): void => {
    const data = evt.data
    if (data instanceof Uint8Array) {
      queue.push(data)
      queued += data.byteLength
    } else {
      for (const buf of data) {
        queue.push(buf)
        queued += buf.byteLength
      }
    }
    // inside resume() the muxer re-opens its window after this dispatch, which would undo a pause here
    if (!resuming) pauseIfFull()
    notify()
  }
  const pauseIfFull = (): void => {
    if (queued > READ_HIGH_WATER && stream.readStatus === 'readable') stream.pause()
  }
  const onEnd = (): void => {
    // an abort or a reset also ends the readable side, with its buffer thrown away
    if (stream.status === 'aborted' || stream.status === 'reset') failure ??= new TransferIncompleteError('the DAG stream was reset')
    ended = true
    notify()
  }
  const onClose = (evt: Event): void => {
    const error = (evt as StreamCloseEvent).error
    if (error != null) {
      failure ??= error
      notify()
    }
  }
  const onAbort = (): void => {
    failure ??= signal?.reason
    notify()
  }
  stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, PAUSED_BUFFER_BYTES)
  stream.addEventListener('message', onMessage)
  stream.addEventListener('end', onEnd)
  stream.addEventListener('close', onClose)
  signal?.addEventListener('abort', onAbort)
  if (stream.readableEnded) ended = true

  return {
    async next () {
      while (true) {
        if (failure != null) throw failure
        const chunk = queue.shift()
        if (chunk != null) {
          queued -= chunk.byteLength
          if (queued <= READ_LOW_WATER && stream.readStatus === 'paused') {
            resuming = true
            try {
              stream.resume()
              pauseIfFull()
            } catch {
              // the buffered data was dispatched before the window update that threw; the end or close follows
            } finally {
              resuming = false
            }
          }
          return chunk
        }
        if (ended) return undefined
        await new Promise<void>(resolve => { wake = resolve })
      }
    },
    close () {
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('end', onEnd)
      stream.removeEventListener('close', onClose)
      signal?.removeEventListener('abort', onAbort)
    }
  }
}
