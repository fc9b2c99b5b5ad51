/**
 * The storage commitment tree (issue 4). The bytes S are cut into 1024-byte segments, the
 * last zero-padded. Leaf i = sha256(0x00 || segment_i); parent = sha256(0x01 || left || right);
 * each level is paired left to right and an odd last node is carried up unchanged; the root
 * is the one node left. A proof lists the sibling hashes from the leaf up, skipping levels
 * where the node was carried up. The Solidity verifier implements the same rules.
 *
 * Speed: one `crypto.hash()` call per leaf and per parent; Node's per-call overhead (~0.8 µs)
 * outweighs hashing a 1 KiB segment with SHA-NI, so the hot loop avoids every allocation
 * it can and `merkle-pool.ts` spreads whole chunks over worker threads.
 */
import { hash } from 'node:crypto'
import { EmptyCommitmentError, SegmentOutOfRangeError } from './errors.ts'

export const SEGMENT_SIZE = 1024
/** Segments per chunk: a chunk is a perfect subtree, so its root can be hashed anywhere. */
export const CHUNK_SEGMENTS = 1024
export const CHUNK_SIZE = SEGMENT_SIZE * CHUNK_SEGMENTS
/** Height of a chunk's subtree (2^10 = CHUNK_SEGMENTS). */
const CHUNK_LEVEL = 10
const HASH_SIZE = 32

export interface MerkleCommitment {
  root: Uint8Array
  /** Bytes of S. */
  size: number
  segments: number
}

export interface SegmentProof {
  /** The segment, zero-padded to 1024 bytes. */
  segment: Uint8Array
  /** Sibling hashes from the leaf up. */
  proof: Uint8Array[]
}

export interface CommitmentBuilder {
  /** Appends bytes of S; any chunking. */
  update(bytes: Uint8Array): void
  /**
   * Adds `count` whole chunks whose subtree roots were hashed elsewhere (a worker), as if
   * their bytes had been passed to `update()`. Only valid on a chunk boundary.
   */
  appendChunkRoots(roots: Uint8Array, count: number): void
  /** Throws ERR_EMPTY_COMMITMENT when S is empty. */
  digest(): MerkleCommitment
}

/** Scratch buffers for prefixed hashing, one set per builder so calls never share state. */
class Hasher {
  private readonly leafInput = new Uint8Array(1 + SEGMENT_SIZE)
  private readonly nodeInput = new Uint8Array(1 + 2 * HASH_SIZE)
  private readonly chunkLevel = new Uint8Array(CHUNK_SEGMENTS * HASH_SIZE)

  constructor () {
    this.leafInput[0] = 0x00
    this.nodeInput[0] = 0x01
  }

  /** Leaf hash of the segment at `bytes[offset..offset+len)`, zero-padded to 1024 bytes. */
  leaf (bytes: Uint8Array, offset: number, len = SEGMENT_SIZE): Uint8Array {
    const input = this.leafInput
    input.set(bytes.subarray(offset, offset + len), 1)
    if (len < SEGMENT_SIZE) input.fill(0, 1 + len)
    return hash('sha256', input, 'buffer')
  }

  node (left: Uint8Array, right: Uint8Array): Uint8Array {
    this.nodeInput.set(left, 1)
    this.nodeInput.set(right, 1 + HASH_SIZE)
    return hash('sha256', this.nodeInput, 'buffer')
  }

  /** Root of the perfect subtree over the CHUNK_SIZE bytes at `bytes[offset..]`. */
  chunkRoot (bytes: Uint8Array, offset: number): Uint8Array {
    const level = this.chunkLevel
    const leafInput = this.leafInput
    for (let i = 0; i < CHUNK_SEGMENTS; i++) {
      const start = offset + i * SEGMENT_SIZE
      leafInput.set(bytes.subarray(start, start + SEGMENT_SIZE), 1)
      level.set(hash('sha256', leafInput, 'buffer'), i * HASH_SIZE)
    }
    // Pair in place: node j is written only after nodes 2j and 2j+1 were read.
    const nodeInput = this.nodeInput
    for (let width = CHUNK_SEGMENTS / 2; width >= 1; width >>= 1) {
      for (let j = 0; j < width; j++) {
        nodeInput.set(level.subarray(2 * j * HASH_SIZE, (2 * j + 2) * HASH_SIZE), 1)
        level.set(hash('sha256', nodeInput, 'buffer'), j * HASH_SIZE)
      }
    }
    return level.slice(0, HASH_SIZE)
  }
}

/**
 * Pending perfect subtrees, largest (leftmost) first, merged like a binary counter. Merging
 * the leftovers smallest-first at the end reproduces the level-by-level "odd last node is
 * carried up" shape: at every level the trailing partial node is either carried alone or
 * paired with the perfect subtree just left of it, which is exactly this fold.
 */
class NodeStack {
  private readonly hashes: Uint8Array[] = []
  private readonly levels: number[] = []
  private readonly hasher: Hasher

  constructor (hasher: Hasher) {
    this.hasher = hasher
  }

  push (node: Uint8Array, level: number): void {
    while (this.levels.length > 0 && this.levels[this.levels.length - 1] === level) {
      this.levels.pop()
      node = this.hasher.node(this.hashes.pop() as Uint8Array, node)
      level++
    }
    this.hashes.push(node)
    this.levels.push(level)
  }

  root (): Uint8Array | undefined {
    let acc = this.hashes[this.hashes.length - 1]
    for (let i = this.hashes.length - 2; i >= 0; i--) {
      acc = this.hasher.node(this.hashes[i] as Uint8Array, acc as Uint8Array)
    }
    return acc
  }
}

/**
 * Cuts a stream into whole chunks without copying when the input is already chunk-aligned;
 * a partial chunk is carried across calls.
 */
class Chunker {
  private readonly pending = new Uint8Array(CHUNK_SIZE)
  private filled = 0
  private readonly onChunk: (bytes: Uint8Array, offset: number) => void

  constructor (onChunk: (bytes: Uint8Array, offset: number) => void) {
    this.onChunk = onChunk
  }

  get aligned (): boolean {
    return this.filled === 0
  }

  update (bytes: Uint8Array): void {
    let offset = 0
    if (this.filled > 0) {
      const take = Math.min(CHUNK_SIZE - this.filled, bytes.length)
      this.pending.set(bytes.subarray(0, take), this.filled)
      this.filled += take
      offset = take
      if (this.filled < CHUNK_SIZE) return
      this.filled = 0
      this.onChunk(this.pending, 0)
    }
    while (bytes.length - offset >= CHUNK_SIZE) {
      this.onChunk(bytes, offset)
      offset += CHUNK_SIZE
    }
    if (offset < bytes.length) {
      this.pending.set(bytes.subarray(offset), 0)
      this.filled = bytes.length - offset
    }
  }

  /** The partial chunk left over at the end of the stream. */
  tail (): Uint8Array {
    return this.pending.subarray(0, this.filled)
  }
}

class Builder implements CommitmentBuilder {
  private readonly hasher = new Hasher()
  private readonly stack = new NodeStack(this.hasher)
  private readonly chunker = new Chunker((bytes, offset) => {
    this.stack.push(this.hasher.chunkRoot(bytes, offset), CHUNK_LEVEL)
  })

  private size = 0
  private done = false

  update (bytes: Uint8Array): void {
    if (this.done) throw new Error('digest() was already called')
    this.size += bytes.length
    this.chunker.update(bytes)
  }

  appendChunkRoots (roots: Uint8Array, count: number): void {
    if (this.done) throw new Error('digest() was already called')
    if (!this.chunker.aligned) throw new Error('appendChunkRoots() needs a chunk boundary')
    for (let i = 0; i < count; i++) {
      this.stack.push(roots.slice(i * HASH_SIZE, (i + 1) * HASH_SIZE), CHUNK_LEVEL)
    }
    this.size += count * CHUNK_SIZE
  }

  digest (): MerkleCommitment {
    if (this.done) throw new Error('digest() was already called')
    this.done = true
    const tail = this.chunker.tail()
    for (let offset = 0; offset < tail.length; offset += SEGMENT_SIZE) {
      this.stack.push(this.hasher.leaf(tail, offset, Math.min(SEGMENT_SIZE, tail.length - offset)), 0)
    }
    const root = this.stack.root()
    if (root == null) throw new EmptyCommitmentError()
    return { root: Uint8Array.from(root), size: this.size, segments: segmentCount(this.size) }
  }
}

/** A streaming commitment builder: memory is one chunk plus O(log n) pending hashes. */
export function createCommitmentBuilder (): CommitmentBuilder {
  return new Builder()
}

export function segmentCount (size: number): number {
  return Math.ceil(size / SEGMENT_SIZE)
}

/**
 * Roots of the whole chunks in `bytes` (length a multiple of CHUNK_SIZE), concatenated.
 * This is the work a hashing worker does.
 */
export function hashChunks (bytes: Uint8Array): Uint8Array {
  if (bytes.length % CHUNK_SIZE !== 0) throw new RangeError('hashChunks() needs whole chunks')
  const hasher = new Hasher()
  const count = bytes.length / CHUNK_SIZE
  const roots = new Uint8Array(count * HASH_SIZE)
  for (let i = 0; i < count; i++) roots.set(hasher.chunkRoot(bytes, i * CHUNK_SIZE), i * HASH_SIZE)
  return roots
}

/** Root of the level-by-level tree over `nodes` and the sibling path of `nodes[index]`. */
function pathOf (hasher: Hasher, nodes: Uint8Array[], index: number): { root: Uint8Array, proof: Uint8Array[] } {
  const proof: Uint8Array[] = []
  let level = nodes
  let i = index
  while (level.length > 1) {
    const carried = i === level.length - 1 && level.length % 2 === 1
    if (!carried) proof.push(level[i ^ 1] as Uint8Array)
    const next: Uint8Array[] = []
    for (let j = 0; j + 1 < level.length; j += 2) next.push(hasher.node(level[j] as Uint8Array, level[j + 1] as Uint8Array))
    if (level.length % 2 === 1) next.push(level[level.length - 1] as Uint8Array)
    level = next
    i >>= 1
  }
  return { root: level[0] as Uint8Array, proof }
}

function checkIndex (index: number): void {
  if (!Number.isSafeInteger(index) || index < 0) throw new SegmentOutOfRangeError(`Segment index ${index} is not a whole number >= 0`)
}

/**
 * The segment at `index` of S and its Merkle path. Reads all of S once; keeps one hash per
 * chunk plus the leaves of the chunk holding `index`, so memory is ~n/32 bytes.
 * The path is the leaf's path inside its chunk followed by the chunk's path in the tree over
 * chunk roots: the level-by-level rule treats both parts exactly as it treats the whole tree,
 * because every chunk but the last is a perfect subtree and the last one only ever gets
 * paired or carried as a unit above its own height.
 */
export async function proveSegment (source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, index: number): Promise<SegmentProof> {
  checkIndex(index)
  const hasher = new Hasher()
  const targetChunk = Math.floor(index / CHUNK_SEGMENTS)
  const chunkRoots: Uint8Array[] = []
  let inner: { root: Uint8Array, proof: Uint8Array[] } | undefined
  let segment: Uint8Array | undefined
  let size = 0

  const leavesOf = (bytes: Uint8Array, offset: number, length: number): Uint8Array[] => {
    const leaves: Uint8Array[] = []
    for (let o = 0; o < length; o += SEGMENT_SIZE) leaves.push(hasher.leaf(bytes, offset + o, Math.min(SEGMENT_SIZE, length - o)))
    return leaves
  }
  const takeSegment = (bytes: Uint8Array, offset: number, length: number): void => {
    const start = offset + (index % CHUNK_SEGMENTS) * SEGMENT_SIZE
    segment = new Uint8Array(SEGMENT_SIZE)
    segment.set(bytes.subarray(start, Math.min(start + SEGMENT_SIZE, offset + length)))
  }

  const chunker = new Chunker((bytes, offset) => {
    if (chunkRoots.length === targetChunk) {
      inner = pathOf(hasher, leavesOf(bytes, offset, CHUNK_SIZE), index % CHUNK_SEGMENTS)
      takeSegment(bytes, offset, CHUNK_SIZE)
      chunkRoots.push(inner.root)
    } else {
      chunkRoots.push(hasher.chunkRoot(bytes, offset))
    }
  })
  for await (const bytes of source) {
    size += bytes.length
    chunker.update(bytes)
  }

  const segments = segmentCount(size)
  if (index >= segments) throw new SegmentOutOfRangeError(`Segment index ${index} is past the last segment (${segments} segments)`)
  const tail = chunker.tail()
  if (tail.length > 0) {
    const leaves = leavesOf(tail, 0, tail.length)
    if (chunkRoots.length === targetChunk) {
      inner = pathOf(hasher, leaves, index % CHUNK_SEGMENTS)
      takeSegment(tail, 0, tail.length)
      chunkRoots.push(inner.root)
    } else {
      chunkRoots.push(pathOf(hasher, leaves, 0).root)
    }
  }
  if (inner == null || segment == null) throw new SegmentOutOfRangeError()
  const outer = pathOf(hasher, chunkRoots, targetChunk)
  return { segment, proof: [...inner.proof, ...outer.proof].map(h => Uint8Array.from(h)) }
}

/** Mirrors the contract's verifier: true only for the exact segment, index and path under `root`. */
export function verifySegment (root: Uint8Array, segments: number, index: number, segment: Uint8Array, proof: Uint8Array[]): boolean {
  if (root.length !== HASH_SIZE || segment.length !== SEGMENT_SIZE) return false
  if (!Number.isSafeInteger(segments) || !Number.isSafeInteger(index)) return false
  if (segments < 1 || index < 0 || index >= segments) return false
  const hasher = new Hasher()
  let node = hasher.leaf(segment, 0)
  let i = index
  let count = segments
  let used = 0
  while (count > 1) {
    const carried = i === count - 1 && count % 2 === 1
    if (!carried) {
      const sibling = proof[used++]
      if (sibling == null || sibling.length !== HASH_SIZE) return false
      node = i % 2 === 0 ? hasher.node(node, sibling) : hasher.node(sibling, node)
    }
    i = Math.floor(i / 2)
    count = Math.ceil(count / 2)
  }
  return used === proof.length && equal(node, root)
}

function equal (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number)
  return diff === 0
}
