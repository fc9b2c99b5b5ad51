/**
 * The storage commitment tree (issue 4). The bytes S are cut into 1024-byte segments, the
 * last zero-padded. Leaf i = sha256(0x00 || segment_i); parent = sha256(0x01 || left || right);
 * each level is paired left to right and an odd last node is carried up unchanged; the root
 * is the one node left. A proof lists the sibling hashes from the leaf up, skipping levels
 * where the node was carried up. The Solidity verifier implements the same rules.
 *
 * Speed: one `crypto.hash()` call per leaf and per parent. Node's per-call overhead (~0.7 µs
 * when it returns a Buffer) outweighs hashing a 1 KiB segment with SHA-NI, so the hot loops
 * keep hashes as strings (see `Hash`, ~0.2 µs per call) and `merkle-pool.ts` spreads whole
 * chunks over worker threads.
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

/**
 * Hashes are kept as 32-char latin1 strings inside the hot paths: `crypto.hash()` returning a
 * string costs a third of returning a Buffer (0.23 µs vs 0.76 µs per 65-byte node here), and
 * latin1 maps bytes to chars one to one, so nothing is lost. Uint8Arrays only at the edges.
 */
type Hash = string

const toBytes = (h: Hash): Uint8Array => Uint8Array.from(Buffer.from(h, 'latin1'))
const fromBytes = (b: Uint8Array): Hash => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1')

/** Scratch buffers for prefixed hashing, one set per builder so calls never share state. */
class Hasher {
  private readonly leafInput = Buffer.alloc(1 + SEGMENT_SIZE)
  private readonly nodeInput = Buffer.alloc(1 + 2 * HASH_SIZE)
  private readonly chunkLevel: Hash[] = new Array<Hash>(CHUNK_SEGMENTS).fill('')

  constructor () {
    this.leafInput[0] = 0x00
    this.nodeInput[0] = 0x01
  }

  /** Leaf hash of the segment at `bytes[offset..offset+len)`, zero-padded to 1024 bytes. */
  leaf (bytes: Uint8Array, offset: number, len = SEGMENT_SIZE): Hash {
    const input = this.leafInput
    input.set(bytes.subarray(offset, offset + len), 1)
    if (len < SEGMENT_SIZE) input.fill(0, 1 + len)
    return hash('sha256', input, 'binary')
  }

  node (left: Hash, right: Hash): Hash {
    const input = this.nodeInput
    input.write(left, 1, 'latin1')
    input.write(right, 1 + HASH_SIZE, 'latin1')
    return hash('sha256', input, 'binary')
  }

  /** Root of the perfect subtree over the CHUNK_SIZE bytes at `bytes[offset..]`. */
  chunkRoot (bytes: Uint8Array, offset: number): Hash {
    const level = this.chunkLevel
    const leafInput = this.leafInput
    for (let i = 0; i < CHUNK_SEGMENTS; i++) {
      const start = offset + i * SEGMENT_SIZE
      leafInput.set(bytes.subarray(start, start + SEGMENT_SIZE), 1)
      level[i] = hash('sha256', leafInput, 'binary')
    }
    // Pair in place: node j is written only after nodes 2j and 2j+1 were read.
    for (let width = CHUNK_SEGMENTS / 2; width >= 1; width >>= 1) {
      for (let j = 0; j < width; j++) level[j] = this.node(level[2 * j] as Hash, level[2 * j + 1] as Hash)
    }
    return level[0] as Hash
  }
}

/**
 * Pending perfect subtrees, largest (leftmost) first, merged like a binary counter. Merging
 * the leftovers smallest-first at the end reproduces the level-by-level "odd last node is
 * carried up" shape: at every level the trailing partial node is either carried alone or
 * paired with the perfect subtree just left of it, which is exactly this fold.
 */
class NodeStack {
  private readonly hashes: Hash[] = []
  private readonly levels: number[] = []
  private readonly hasher: Hasher

  constructor (hasher: Hasher) {
    this.hasher = hasher
  }

  push (node: Hash, level: number): void {
    while (this.levels.length > 0 && this.levels[this.levels.length - 1] === level) {
      this.levels.pop()
      node = this.hasher.node(this.hashes.pop() as Hash, node)
      level++
    }
    this.hashes.push(node)
    this.levels.push(level)
  }

  root (): Hash | undefined {
    let acc = this.hashes[this.hashes.length - 1]
    for (let i = this.hashes.length - 2; i >= 0; i--) {
      acc = this.hasher.node(this.hashes[i] as Hash, acc as Hash)
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
      this.stack.push(fromBytes(roots.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE)), CHUNK_LEVEL)
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
    return { root: toBytes(root), size: this.size, segments: segmentCount(this.size) }
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
  // A Buffer of its own (not from Buffer's shared pool) so a worker can transfer it.
  const roots = Buffer.alloc(count * HASH_SIZE)
  for (let i = 0; i < count; i++) roots.write(hasher.chunkRoot(bytes, i * CHUNK_SIZE), i * HASH_SIZE, 'latin1')
  return new Uint8Array(roots.buffer, roots.byteOffset, roots.byteLength)
}

/** Root of the level-by-level tree over `nodes` and the sibling path of `nodes[index]`. */
function pathOf (hasher: Hasher, nodes: Hash[], index: number): { root: Hash, proof: Hash[] } {
  const proof: Hash[] = []
  let level = nodes
  let i = index
  while (level.length > 1) {
    const carried = i === level.length - 1 && level.length % 2 === 1
    if (!carried) proof.push(level[i ^ 1] as Hash)
    const next: Hash[] = []
    for (let j = 0; j + 1 < level.length; j += 2) next.push(hasher.node(level[j] as Hash, level[j + 1] as Hash))
    if (level.length % 2 === 1) next.push(level[level.length - 1] as Hash)
    level = next
    i >>= 1
  }
  return { root: level[0] as Hash, proof }
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
  const chunkRoots: Hash[] = []
  let inner: { root: Hash, proof: Hash[] } | undefined
  let segment: Uint8Array | undefined
  let size = 0

  const leavesOf = (bytes: Uint8Array, offset: number, length: number): Hash[] => {
    const leaves: Hash[] = []
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
  return { segment, proof: [...inner.proof, ...outer.proof].map(toBytes) }
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
      const other = fromBytes(sibling)
      node = i % 2 === 0 ? hasher.node(node, other) : hasher.node(other, node)
    }
    i = Math.floor(i / 2)
    count = Math.ceil(count / 2)
  }
  return used === proof.length && node === fromBytes(root)
}
