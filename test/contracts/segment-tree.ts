/**
 * An independent implementation of the storage-commitment rules (written from the issue text,
 * not from src/rewards/) used to cross-check both the contract's verifySegment and the node's
 * commitment builder: 1024-byte segments, the last zero-padded; leaf = sha256(0x00 || seg);
 * parent = sha256(0x01 || left || right); an odd last node is carried up unchanged; a proof
 * lists siblings from the leaf up, skipping carried levels.
 */
import { createHash } from 'node:crypto'

export const SEGMENT_SIZE = 1024

export function segmentAt (bytes: Uint8Array, index: number): Buffer {
  const out = Buffer.alloc(SEGMENT_SIZE)
  out.set(bytes.subarray(index * SEGMENT_SIZE, (index + 1) * SEGMENT_SIZE))
  return out
}

export function leafHash (segment: Uint8Array): Buffer {
  return createHash('sha256').update(Uint8Array.of(0)).update(segment).digest()
}

function parentHash (level: Buffer, left: number, right: number): Buffer {
  return createHash('sha256').update(Uint8Array.of(1))
    .update(level.subarray(left * 32, left * 32 + 32))
    .update(level.subarray(right * 32, right * 32 + 32)).digest()
}

/** Every level of the tree, leaves first, each a buffer of concatenated 32-byte hashes. */
export function buildLevels (leaves: Buffer): Buffer[] {
  const levels = [leaves]
  let level = leaves
  while (level.length > 32) {
    const n = level.length / 32
    const next = Buffer.alloc(Math.ceil(n / 2) * 32)
    for (let i = 0; i + 1 < n; i += 2) parentHash(level, i, i + 1).copy(next, (i / 2) * 32)
    if (n % 2 === 1) level.copy(next, ((n - 1) / 2) * 32, (n - 1) * 32)
    levels.push(next)
    level = next
  }
  return levels
}

export function rootOf (levels: Buffer[]): string {
  const top = levels[levels.length - 1]
  if (top == null) throw new Error('empty tree')
  return '0x' + top.subarray(0, 32).toString('hex')
}

export function proofOf (levels: Buffer[], index: number): string[] {
  const proof: string[] = []
  let i = index
  for (const level of levels.slice(0, -1)) {
    const n = level.length / 32
    const sibling = i % 2 === 0 ? i + 1 : i - 1
    if (sibling < n) proof.push('0x' + level.subarray(sibling * 32, sibling * 32 + 32).toString('hex'))
    i = Math.floor(i / 2)
  }
  return proof
}

export interface TreeCommitment {
  root: string
  size: number
  segments: number
  levels: Buffer[]
}

export function commit (bytes: Uint8Array): TreeCommitment {
  const segments = Math.ceil(bytes.length / SEGMENT_SIZE)
  const leaves = Buffer.alloc(segments * 32)
  for (let i = 0; i < segments; i++) leafHash(segmentAt(bytes, i)).copy(leaves, i * 32)
  const levels = buildLevels(leaves)
  return { root: rootOf(levels), size: bytes.length, segments, levels }
}
