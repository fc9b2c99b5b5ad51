/**
 * Storage commitments of DAGs (issue 4): the Merkle root of merkle.ts over S, the bytes of
 * every block reachable from the root in `walkDag` order, as the hex values the chain and the
 * CLI (`pinbox deal commitment|proof --json`) use.
 */
import { walkDag } from '../content/dag-walk.ts'
import { CommitmentMismatchError } from './errors.ts'
import { createParallelCommitmentBuilder } from './merkle-pool.ts'
import { proveSegment, verifySegment } from './merkle.ts'
import type { AbortOptions } from 'abort-error'
import type { Blockstore } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'

export interface Commitment {
  /** 0x + 64 hex digits. */
  root: string
  /** Bytes of S. */
  size: number
  /** 1024-byte segments of S, the last zero-padded. */
  segments: number
}

export interface SegmentProofHex {
  /** 0x + 2048 hex digits: the segment, zero-padded. */
  segment: string
  /** Sibling hashes from the leaf up, each 0x + 64 hex digits. */
  proof: string[]
}

export interface BuildCommitmentOptions extends AbortOptions {
  /** Hashing worker threads for large inputs; 0 hashes on the calling thread. Default: cores, at most 4. */
  workers?: number
  /** Bytes hashed on the calling thread before workers are started. Default 64 MiB. */
  parallelThreshold?: number
}

export type CommitmentBlockstore = Pick<Blockstore, 'get'>

export function toHex (bytes: Uint8Array): string {
  return '0x' + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

/** Bytes of a 0x-prefixed hex string, or undefined when it is not one. */
export function fromHex (hex: string): Uint8Array | undefined {
  if (!/^0x([0-9a-fA-F]{2})*$/.test(hex)) return undefined
  return Uint8Array.from(Buffer.from(hex.slice(2), 'hex'))
}

/**
 * Commitment over the concatenated bytes of `blocks`, in the order given. Throws
 * ERR_EMPTY_COMMITMENT when there are no bytes at all.
 */
export async function buildCommitment (blocks: AsyncIterable<{ bytes: Uint8Array }> | Iterable<{ bytes: Uint8Array }>, options: BuildCommitmentOptions = {}): Promise<Commitment> {
  const builder = createParallelCommitmentBuilder(options)
  try {
    for await (const block of blocks) {
      options.signal?.throwIfAborted()
      await builder.update(block.bytes)
    }
    options.signal?.throwIfAborted()
    const { root, size, segments } = await builder.digest()
    return { root: toHex(root), size, segments }
  } finally {
    await builder.close()
  }
}

export async function commitmentOfDag (blockstore: CommitmentBlockstore, cid: CID, options: BuildCommitmentOptions = {}): Promise<Commitment> {
  return buildCommitment(walkDag(blockstore, cid, { signal: options.signal }), options)
}

async function * bytesOf (blocks: AsyncIterable<{ bytes: Uint8Array }>): AsyncGenerator<Uint8Array> {
  for await (const block of blocks) yield block.bytes
}

/** Segment `index` of the DAG's S and its Merkle path; ERR_SEGMENT_OUT_OF_RANGE past the end. */
export async function segmentProofOfDag (blockstore: CommitmentBlockstore, cid: CID, index: number, options: AbortOptions = {}): Promise<SegmentProofHex> {
  const { segment, proof } = await proveSegment(bytesOf(walkDag(blockstore, cid, { signal: options.signal })), index)
  return { segment: toHex(segment), proof: proof.map(toHex) }
}

/** The TS twin of the contract's check, on the hex forms; false for anything malformed. */
export function verifySegmentProof (commitment: Pick<Commitment, 'root' | 'segments'>, index: number, proof: SegmentProofHex): boolean {
  const root = fromHex(commitment.root)
  const segment = fromHex(proof.segment)
  const path = proof.proof.map(fromHex)
  if (root == null || segment == null || path.some(p => p == null)) return false
  return verifySegment(root, commitment.segments, index, segment, path as Uint8Array[])
}

/**
 * Recomputes the DAG's commitment from local blocks and throws ERR_COMMITMENT_MISMATCH unless
 * root, size and segment count all equal the expected ones: a provider's check before it
 * accepts a deal.
 */
export async function assertCommitmentOfDag (blockstore: CommitmentBlockstore, cid: CID, expected: Commitment, options: BuildCommitmentOptions = {}): Promise<Commitment> {
  const actual = await commitmentOfDag(blockstore, cid, options)
  if (actual.root !== expected.root.toLowerCase() || actual.size !== expected.size || actual.segments !== expected.segments) {
    throw new CommitmentMismatchError(`Commitment of ${cid.toString()} is ${actual.root} (${actual.size} bytes), the deal says ${expected.root} (${expected.size} bytes)`)
  }
  return actual
}
