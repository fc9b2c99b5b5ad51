import * as dagCbor from '@ipld/dag-cbor'
import { chunkReader, limitReader, readBlockHead, readHeader } from '@ipld/car/decoder'
import { varint } from 'multiformats'
import { IDENTITY_CODE, verifyBlock } from './blocks.ts'
import { walkDags } from './dag-walk.ts'
import { BlockHashMismatchError, BlockTooLargeError, CarInvalidError, CarTruncatedError } from './errors.ts'
import type { CarImportResult } from './types.ts'
import type { WalkDagOptions } from './dag-walk.ts'
import type { BytesReader } from '@ipld/car/decoder'
import type { Blockstore } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'

/** Bitswap refuses blocks over 2 MiB and Kubo makes none over 1 MiB; 4 MiB leaves room for odd DAGs. */
export const DEFAULT_MAX_BLOCK_BYTES = 4 * 1024 * 1024

export interface ExportCarOptions {
  signal?: AbortSignal
  onProgress?: WalkDagOptions['onProgress']
}

/**
 * Streams a CARv1 of everything reachable from `roots`, blocks in `walkDag` order. A missing
 * block ends the stream with ERR_BLOCK_MISSING (after the blocks before it were sent).
 */
export async function * exportCar (blockstore: Pick<Blockstore, 'get'>, roots: CID[], options: ExportCarOptions = {}): AsyncGenerator<Uint8Array> {
  yield encodeCarHeader(roots)
  for await (const { cid, bytes } of walkDags(blockstore, roots, options)) {
    yield sectionPrefix(cid, bytes.byteLength)
    yield bytes
  }
}

export function encodeCarHeader (roots: CID[]): Uint8Array {
  const header = dagCbor.encode({ roots, version: 1 })
  const out = new Uint8Array(varint.encodingLength(header.length) + header.length)
  varint.encodeTo(header.length, out)
  out.set(header, out.length - header.length)
  return out
}

/** A CAR section is varint(length of CID + block) ‖ CID ‖ block; this is everything but the block. */
function sectionPrefix (cid: CID, blockLength: number): Uint8Array {
  const cidBytes = cid.bytes
  const sectionLength = cidBytes.length + blockLength
  const lengthBytes = varint.encodingLength(sectionLength)
  const out = new Uint8Array(lengthBytes + cidBytes.length)
  varint.encodeTo(sectionLength, out)
  out.set(cidBytes, lengthBytes)
  return out
}

export interface ImportCarOptions {
  signal?: AbortSignal
  /** Larger blocks are refused before their bytes are buffered. Default 4 MiB. */
  maxBlockBytes?: number
  onProgress?(progress: { blocks: number, bytes: number }): void
}

const isEndOfData = (err: any): boolean => typeof err?.message === 'string' && err.message.includes('Unexpected end of data')

/**
 * Stores the blocks of a CAR (v1 or v2) as they stream in, each re-hashed against its CID first.
 * On a bad block it stops: blocks before it stay stored, nothing after it is. Identity-hash
 * blocks are verified but not stored (their bytes live in the CID). Checking that the roots'
 * DAGs are complete is left to the caller (`assertComplete`).
 */
export async function importCar (blockstore: Pick<Blockstore, 'put'>, source: AsyncIterable<Uint8Array>, options: ImportCarOptions = {}): Promise<CarImportResult> {
  const { signal } = options
  signal?.throwIfAborted()
  // our own iterator, so a failed import can close the source (an fs stream's fd, a socket)
  const iterator = source[Symbol.asyncIterator]()
  let finished = false
  try {
    const reader = chunkReader(async () => {
      const next = await iterator.next()
      finished = next.done === true
      return next.done === true ? null : next.value
    })
    return await readCar(blockstore, reader, options)
  } finally {
    if (!finished) {
      await iterator.return?.()
    }
  }
}

async function readCar (blockstore: Pick<Blockstore, 'put'>, input: BytesReader, options: ImportCarOptions): Promise<CarImportResult> {
  const { signal } = options
  const maxBlockBytes = options.maxBlockBytes ?? DEFAULT_MAX_BLOCK_BYTES
  let reader = input

  let roots: CID[]
  try {
    const header = await readHeader(reader)
    if (header.version === 2) {
      // the CARv1 payload of a v2 file ends where its index begins
      reader = limitReader(reader, header.dataSize - (reader.pos - header.dataOffset))
    }
    roots = header.roots
  } catch (err: any) {
    throw new CarInvalidError(isEndOfData(err) ? 'no complete header' : String(err?.message ?? err), { cause: err })
  }

  let blocks = 0
  let bytes = 0
  while (true) {
    signal?.throwIfAborted()
    let cid: CID
    let block: Uint8Array
    try {
      if ((await reader.upTo(8)).length === 0) {
        break
      }
      const head = await readBlockHead(reader)
      cid = head.cid
      if (head.blockLength > maxBlockBytes) {
        throw new BlockTooLargeError(cid, head.blockLength, maxBlockBytes)
      }
      if (head.blockLength < 0) {
        throw new CarInvalidError(`section for ${cid} is shorter than its CID`)
      }
      block = await reader.exactly(head.blockLength, true)
    } catch (err: any) {
      if (err instanceof BlockTooLargeError || err instanceof CarInvalidError) {
        throw err
      }
      if (isEndOfData(err)) {
        throw new CarTruncatedError(blocks, { cause: err })
      }
      throw new CarInvalidError(String(err?.message ?? err), { cause: err })
    }
    if (!await verifyBlock(cid, block)) {
      throw new BlockHashMismatchError(cid, blocks)
    }
    if (cid.multihash.code === IDENTITY_CODE) {
      continue
    }
    // a subarray would keep the reader's whole input chunk alive for as long as the store holds the block
    await blockstore.put(cid, block.slice(), { signal })
    blocks++
    bytes += block.byteLength
    options.onProgress?.({ blocks, bytes })
  }
  return { roots, blocks, bytes }
}

/** Walks `root`'s DAG and throws ERR_BLOCK_MISSING (naming the CID) at the first absent block. */
export async function assertComplete (blockstore: Pick<Blockstore, 'get'>, root: CID, options: { signal?: AbortSignal } = {}): Promise<void> {
  for await (const _block of walkDags(blockstore, [root], options)) {
    // reading every block is the check
  }
}
