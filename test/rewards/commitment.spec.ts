import { createHash, randomBytes } from 'node:crypto'
import { describe, it, expect } from 'vitest'
import {
  CHUNK_SIZE, SEGMENT_SIZE, createCommitmentBuilder, hashChunks, proveSegment, verifySegment
} from '../../src/rewards/merkle.ts'

/**
 * Reference implementation, written straight from the rules with whole levels in
 * arrays and createHash: slow and obvious, shares no code with src/.
 */
function sha (...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}

function naiveSegments (s: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = []
  for (let o = 0; o < s.length; o += 1024) {
    const seg = new Uint8Array(1024)
    seg.set(s.subarray(o, o + 1024))
    out.push(seg)
  }
  return out
}

function naiveLevels (s: Uint8Array): Uint8Array[][] {
  const levels = [naiveSegments(s).map(seg => sha(Uint8Array.of(0), seg))]
  for (;;) {
    const level = levels[levels.length - 1] as Uint8Array[]
    if (level.length <= 1) return levels
    const next: Uint8Array[] = []
    for (let j = 0; j < level.length; j += 2) {
      const left = level[j] as Uint8Array
      const right = level[j + 1]
      next.push(right == null ? left : sha(Uint8Array.of(1), left, right))
    }
    levels.push(next)
  }
}

function naiveRoot (s: Uint8Array): Uint8Array {
  const levels = naiveLevels(s)
  return (levels[levels.length - 1] as Uint8Array[])[0] as Uint8Array
}

function naiveProof (s: Uint8Array, index: number): Uint8Array[] {
  const proof: Uint8Array[] = []
  let i = index
  for (const level of naiveLevels(s).slice(0, -1)) {
    const sibling = i % 2 === 0 ? level[i + 1] : level[i - 1]
    if (sibling != null) proof.push(sibling)
    i = Math.floor(i / 2)
  }
  return proof
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

function builderRoot (s: Uint8Array, piece: number): { root: string, size: number, segments: number } {
  const b = createCommitmentBuilder()
  for (let o = 0; o < s.length; o += piece) b.update(s.subarray(o, o + piece))
  const d = b.digest()
  return { root: hex(d.root), size: d.size, segments: d.segments }
}

describe('merkle builder', () => {
  it('matches the level-by-level reference for every segment count 1..300', () => {
    const data = randomBytes(300 * SEGMENT_SIZE)
    for (let n = 1; n <= 300; n++) {
      // A short last segment half the time, to exercise the zero padding.
      const size = n % 2 === 0 ? n * SEGMENT_SIZE : n * SEGMENT_SIZE - 17
      const s = data.subarray(0, size)
      const expected = hex(naiveRoot(s))
      expect(builderRoot(s, size), `n=${n}`).toEqual({ root: expected, size, segments: n })
      expect(builderRoot(s, 333).root, `n=${n} chunked`).toBe(expected)
    }
  })
})
