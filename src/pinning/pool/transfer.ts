import { varint } from 'multiformats'
import { encodeCarHeader, exportCar, importCar } from '../../content/car.ts'
import { readBlock } from '../../content/blocks.ts'
import { TransferIncompleteError, TransferTooLargeError } from '../errors.ts'
import { abortStream, DAG_PROTOCOL, decodeDagRequest, encodeMessage, messageStream, MESSAGE_VERSION, parseCids } from './messages.ts'
import type { Lease, RepoBlockstore } from '../../store/types.ts'
import type { AbortOptions, Libp2p, PeerId, Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

/** Bytes gathered before one `send`: fewer, larger muxer frames move a big DAG faster. */
const SEND_CHUNK_BYTES = 256 * 1024

export interface DagServerComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle'>
  blockstore: Pick<RepoBlockstore, 'get'>
  isMember(peer: PeerId): boolean
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

  async function * blocksCar (cids: CID[], options: AbortOptions): AsyncGenerator<Uint8Array> {
    yield encodeCarHeader(cids)
    for (const cid of cids) {
      const bytes = await readBlock(blockstore, cid, options)
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
        : exportCar(blockstore, parseCids(request.roots), { signal })
      await sendAll(stream, source, { signal })
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

async function sendAll (stream: Stream, source: AsyncIterable<Uint8Array>, options: AbortOptions): Promise<void> {
  let parts: Uint8Array[] = []
  let length = 0
  const flush = async (): Promise<void> => {
    if (length === 0) return
    const out = parts.length === 1 ? parts[0] as Uint8Array : Buffer.concat(parts, length)
    parts = []
    length = 0
    if (!stream.send(out)) await stream.onDrain(options)
  }
  for await (const chunk of source) {
    parts.push(chunk)
    length += chunk.byteLength
    if (length >= SEND_CHUNK_BYTES) await flush()
  }
  await flush()
}

export interface FetchDagComponents {
  libp2p: Pick<Libp2p, 'dialProtocol'>
  blockstore: Pick<RepoBlockstore, 'put' | 'has' | 'delete'>
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
}

export interface FetchDagResult {
  blocks: number
  bytes: number
}

/**
 * Requester's side of `/pinbox/dag/1.0.0`: pulls a CAR from `peer`, re-hashing every block as it
 * arrives (`importCar`). On any failure the blocks this transfer added are deleted again, so a
 * lying or oversized transfer leaves nothing behind.
 */
export async function fetchDag (components: FetchDagComponents, peer: PeerId, options: FetchDagOptions): Promise<FetchDagResult> {
  const { libp2p, blockstore } = components
  const { lease, maxBytes, signal } = options
  const roots = options.roots ?? []
  const blocks = options.blocks ?? []
  const written: CID[] = []
  let bytes = 0
  const wanted = new Set(blocks.map(c => c.toString()))
  const stream = await libp2p.dialProtocol(peer, DAG_PROTOCOL, { signal, runOnLimitedConnection: true })
  try {
    const body = encodeMessage({ v: MESSAGE_VERSION, roots: roots.map(String), blocks: blocks.map(String) })
    const prefix = new Uint8Array(varint.encodingLength(body.length))
    varint.encodeTo(body.length, prefix)
    stream.send(Buffer.concat([prefix, body]))
    // our half is done; the holder answers with the CAR and closes its half
    await stream.close({ signal })

    const store = {
      async put (cid: CID, block: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<CID> {
        const data = block as Uint8Array
        bytes += data.byteLength
        if (bytes > maxBytes) throw new TransferTooLargeError(maxBytes)
        lease.add(cid)
        wanted.delete(cid.toString())
        if (options.overwrite === true) {
          await blockstore.delete(cid)
        } else if (await blockstore.has(cid)) {
          return cid
        }
        await blockstore.put(cid, data)
        written.push(cid)
        return cid
      }
    }
    await importCar(store, chunks(stream), signal == null ? {} : { signal })
    if (wanted.size > 0) {
      throw new TransferIncompleteError(`the holder did not send ${wanted.size} of the asked blocks`)
    }
    return { blocks: written.length, bytes }
  } catch (err) {
    abortStream(stream, err)
    // an overwrite (repair) must not delete the good copies it already placed
    if (options.overwrite !== true) {
      await Promise.allSettled(written.map(async cid => { await blockstore.delete(cid) }))
    }
    throw err
  }
}

async function * chunks (stream: Stream): AsyncGenerator<Uint8Array> {
  for await (const chunk of stream) {
    yield chunk instanceof Uint8Array ? chunk : chunk.subarray()
  }
}
