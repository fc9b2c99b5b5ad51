import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { afterAll, beforeAll, describe, it, expect } from 'vitest'
import { importContent } from '../../src/content/import.ts'
import { resolveImportOptions } from '../../src/content/profiles.ts'
import {
  assertCommitmentOfDag, buildCommitment, commitmentOfDag, fromHex, segmentProofOfDag, toHex, verifySegmentProof
} from '../../src/rewards/commitment.ts'
import { createParallelCommitmentBuilder } from '../../src/rewards/merkle-pool.ts'
import {
  CHUNK_SIZE, SEGMENT_SIZE, createCommitmentBuilder, hashChunks, proveSegment, verifySegment
} from '../../src/rewards/merkle.ts'
import { createBlockstore } from '../../src/store/blockstore.ts'
import type { FlatBlockstore } from '../../src/store/blockstore.ts'

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

async function expectCode (promise: Promise<unknown>, code: string): Promise<void> {
  await expect(promise).rejects.toMatchObject({ code })
}

function expectThrowsCode (fn: () => unknown, code: string): void {
  expect(fn).toThrow(expect.objectContaining({ code }))
}

async function * pieces (s: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let o = 0; o < s.length; o += size) yield s.subarray(o, o + size)
}

describe('merkle builder, more shapes', () => {
  it('matches the reference across chunk boundaries and with many chunks', () => {
    const data = randomBytes(9 * 1024 * SEGMENT_SIZE + 333 * SEGMENT_SIZE)
    for (const n of [1023, 1024, 1025, 2047, 2048, 2049, 3 * 1024 + 5, 9 * 1024 + 333]) {
      const s = data.subarray(0, n * SEGMENT_SIZE - 1)
      const expected = hex(naiveRoot(s))
      for (const piece of [1, 1000, CHUNK_SIZE, CHUNK_SIZE + 1, s.length].filter(p => p > 1 || n < 1100)) {
        expect(builderRoot(s, piece), `n=${n} piece=${piece}`).toEqual({ root: expected, size: s.length, segments: n })
      }
    }
  })

  it('accepts chunk roots hashed elsewhere as if the bytes had been given', () => {
    const data = randomBytes(3 * CHUNK_SIZE + 5000)
    const b = createCommitmentBuilder()
    b.appendChunkRoots(hashChunks(data.subarray(0, 3 * CHUNK_SIZE)), 3)
    b.update(data.subarray(3 * CHUNK_SIZE))
    expect(hex(b.digest().root)).toBe(hex(naiveRoot(data)))
    expect(() => hashChunks(data.subarray(0, 100))).toThrow(RangeError)
  })

  it('pads only the last segment, and padding is part of the committed bytes', () => {
    const s = randomBytes(1500)
    const padded = new Uint8Array(2048)
    padded.set(s)
    const a = builderRoot(s, s.length)
    const b = builderRoot(padded, padded.length)
    expect(a.root).toBe(b.root)
    expect(a.size).toBe(1500)
    expect(b.size).toBe(2048)
  })

  it('rejects an empty S with ERR_EMPTY_COMMITMENT', async () => {
    expectThrowsCode(() => createCommitmentBuilder().digest(), 'ERR_EMPTY_COMMITMENT')
    await expectCode(buildCommitment([]), 'ERR_EMPTY_COMMITMENT')
    await expectCode(buildCommitment([{ bytes: new Uint8Array(0) }]), 'ERR_EMPTY_COMMITMENT')
  })
})

describe('parallel builder', () => {
  // 4 MiB batches: 17 MiB + a bit makes four worker batches, whole chunks and a partial one left.
  const data = randomBytes(17 * CHUNK_SIZE + 3 * SEGMENT_SIZE + 100)
  const expected = hex(naiveRoot(data))

  for (const workers of [0, 1, 2]) {
    it(`equals the reference with ${workers} worker(s)`, async () => {
      const c = await buildCommitment((async function * () {
        for await (const bytes of pieces(data, 777_777)) yield { bytes }
      })(), { workers, parallelThreshold: 0 })
      expect(c).toEqual({ root: '0x' + expected, size: data.length, segments: 17 * 1024 + 4 })
    })
  }

  it('hashes on the calling thread below the threshold and workers above, same root', async () => {
    const a = await buildCommitment([{ bytes: data }], { workers: 2 })
    const b = await buildCommitment([{ bytes: data }], { workers: 2, parallelThreshold: 4 * CHUNK_SIZE })
    expect(a.root).toBe('0x' + expected)
    expect(b.root).toBe('0x' + expected)
  })

  it('stops its workers on close() and on abort', async () => {
    // Each live worker holds a MessagePort handle that would keep the process alive.
    const ports = (): number => process.getActiveResourcesInfo().filter(r => r === 'MessagePort').length
    const before = ports()
    const builder = createParallelCommitmentBuilder({ workers: 2, parallelThreshold: 0 })
    await builder.update(data)
    expect(ports()).toBe(before + 2)
    await builder.close()
    await builder.close()
    expect(ports()).toBe(before)
    const controller = new AbortController()
    const source = (async function * () {
      yield { bytes: data }
      controller.abort()
      yield { bytes: data }
    })()
    await expect(buildCommitment(source, { workers: 2, parallelThreshold: 0, signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' })
    expect(ports()).toBe(before)
    await buildCommitment([{ bytes: data }], { workers: 2, parallelThreshold: 0 })
    expect(ports()).toBe(before)
  })
})

describe('proofs', () => {
  it('equal the reference path for every index of every shape up to 70 segments, and verify', async () => {
    const data = randomBytes(70 * SEGMENT_SIZE)
    for (let n = 1; n <= 70; n++) {
      const s = data.subarray(0, n * SEGMENT_SIZE - (n % 3) * 100)
      const root = naiveRoot(s)
      const segs = naiveSegments(s)
      for (let i = 0; i < n; i++) {
        const { segment, proof } = await proveSegment(pieces(s, 500), i)
        expect(hex(segment), `n=${n} i=${i}`).toBe(hex(segs[i] as Uint8Array))
        expect(proof.map(hex), `n=${n} i=${i}`).toEqual(naiveProof(s, i).map(hex))
        expect(verifySegment(root, n, i, segment, proof)).toBe(true)
      }
    }
  })

  it('equal the reference path across chunks (inner path + path over chunk roots)', async () => {
    const n = 3 * 1024 + 5
    const s = randomBytes(n * SEGMENT_SIZE - 10)
    const levels = naiveLevels(s)
    const root = (levels[levels.length - 1] as Uint8Array[])[0] as Uint8Array
    const refProof = (index: number): string[] => {
      const proof: string[] = []
      let i = index
      for (const level of levels.slice(0, -1)) {
        const sibling = i % 2 === 0 ? level[i + 1] : level[i - 1]
        if (sibling != null) proof.push(hex(sibling))
        i = Math.floor(i / 2)
      }
      return proof
    }
    for (const i of [0, 1, 511, 1023, 1024, 1025, 2047, 2048, 3071, 3072, 3075, 3076]) {
      const { segment, proof } = await proveSegment(pieces(s, CHUNK_SIZE / 2 + 3), i)
      expect(proof.map(hex), `i=${i}`).toEqual(refProof(i))
      expect(verifySegment(root, n, i, segment, proof)).toBe(true)
    }
  })

  it('a tampered proof, segment, index, count or root does not verify', async () => {
    const n = 37
    const s = randomBytes(n * SEGMENT_SIZE - 200)
    const root = naiveRoot(s)
    const i = 12
    const { segment, proof } = await proveSegment([s], i)
    const other = await proveSegment([s], 13)
    expect(verifySegment(root, n, i, segment, proof)).toBe(true)

    const flipped = Uint8Array.from(segment)
    flipped[500] = (flipped[500] as number) ^ 1
    expect(verifySegment(root, n, i, flipped, proof), 'wrong byte').toBe(false)
    expect(verifySegment(root, n, i, other.segment, proof), 'moved leaf').toBe(false)
    expect(verifySegment(root, n, 13, segment, proof), 'wrong index').toBe(false)
    expect(verifySegment(root, n, 13, other.segment, other.proof), 'honest neighbour').toBe(true)
    expect(verifySegment(root, n, n, segment, proof), 'index past the end').toBe(false)
    expect(verifySegment(root, n, -1, segment, proof), 'negative index').toBe(false)
    expect(verifySegment(root, n, 1.5, segment, proof), 'fractional index').toBe(false)
    expect(verifySegment(root, n, i, segment.subarray(0, 1023), proof), 'short segment').toBe(false)
    const long = new Uint8Array(1025)
    long.set(segment)
    expect(verifySegment(root, n, i, long, proof), 'long segment').toBe(false)
    // The count only shapes the right edge of the tree, so an interior path is valid for several
    // counts: the verifier must take `segments` from the deal, never from the prover.
    const last = await proveSegment([s], n - 1)
    expect(verifySegment(root, n, n - 1, last.segment, last.proof)).toBe(true)
    expect(verifySegment(root, n + 1, n - 1, last.segment, last.proof), 'wrong count').toBe(false)
    expect(verifySegment(root, n - 1, n - 1, last.segment, last.proof), 'count too small').toBe(false)
    expect(verifySegment(root, 0, 0, segment, proof), 'zero segments').toBe(false)
    expect(verifySegment(root, n, i, segment, proof.slice(0, -1)), 'missing sibling').toBe(false)
    expect(verifySegment(root, n, i, segment, [...proof, root]), 'extra sibling').toBe(false)
    const badSibling = proof.map(p => Uint8Array.from(p))
    const sibling = badSibling[2] as Uint8Array
    sibling[0] = (sibling[0] as number) ^ 0x80
    expect(verifySegment(root, n, i, segment, badSibling), 'flipped sibling').toBe(false)
    expect(verifySegment(root, n, i, segment, [proof[0] as Uint8Array, ...proof.slice(1, -1).reverse(), proof[proof.length - 1] as Uint8Array]), 'reordered path').toBe(false)
    expect(verifySegment(root, n, i, segment, proof.map(p => p.subarray(0, 31))), 'short sibling').toBe(false)
    const badRoot = Uint8Array.from(root)
    badRoot[31] = (badRoot[31] as number) ^ 1
    expect(verifySegment(badRoot, n, i, segment, proof), 'wrong root').toBe(false)
    expect(verifySegment(root.subarray(0, 31), n, i, segment, proof), 'short root').toBe(false)
  })

  it('proving an index past the end, negative or fractional is ERR_SEGMENT_OUT_OF_RANGE', async () => {
    const s = randomBytes(5 * SEGMENT_SIZE)
    await expectCode(proveSegment([s], 5), 'ERR_SEGMENT_OUT_OF_RANGE')
    await expectCode(proveSegment([s], 1e9), 'ERR_SEGMENT_OUT_OF_RANGE')
    await expectCode(proveSegment([s], -1), 'ERR_SEGMENT_OUT_OF_RANGE')
    await expectCode(proveSegment([s], 0.5), 'ERR_SEGMENT_OUT_OF_RANGE')
    await expectCode(proveSegment([], 0), 'ERR_SEGMENT_OUT_OF_RANGE')
  })
})

describe('commitments of DAGs in a real blockstore', () => {
  let dir: string
  let store: FlatBlockstore

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pinbox-commitment-'))
    store = createBlockstore({ path: join(dir, 'blocks') })
    await store.open()
  })

  afterAll(async () => {
    await store?.close()
    await rm(dir, { recursive: true, force: true })
  })

  /** The S, walked here independently: dag-pb links in order, pre-order, each CID once. */
  async function naiveS (root: CID): Promise<Uint8Array> {
    const seen = new Set<string>()
    const parts: Uint8Array[] = []
    const visit = async (cid: CID): Promise<void> => {
      if (seen.has(cid.toString())) return
      seen.add(cid.toString())
      const bytes = await (async () => {
        const chunks: Uint8Array[] = []
        for await (const c of store.get(cid)) chunks.push(c)
        return Buffer.concat(chunks)
      })()
      parts.push(bytes)
      if (cid.code === dagPb.code) {
        for (const link of dagPb.decode(bytes).Links) await visit(link.Hash)
      }
    }
    await visit(root)
    return Buffer.concat(parts)
  }

  async function add (content: Uint8Array, chunker: string, maxChildrenPerNode: number): Promise<CID> {
    const options = resolveImportOptions('unixfs-v1-2025', { chunker, maxChildrenPerNode })
    let cid: CID | undefined
    for await (const entry of importContent(store, [{ path: 'f', content: pieces(content, 65536) }], options)) cid = entry.cid
    return cid as CID
  }

  it('commits to the DFS pre-order bytes of every distinct block, checks and proves them', async () => {
    // Repeated 4 KiB pieces make duplicate leaf blocks: each must count once, at its first visit.
    const unit = randomBytes(4096)
    const content = Buffer.concat([randomBytes(50_000), unit, randomBytes(3000), unit, unit, randomBytes(40_000)])
    const cid = await add(content, 'size-4096', 4)
    const s = await naiveS(cid)
    const c = await commitmentOfDag(store, cid)
    expect(c).toEqual({ root: '0x' + hex(naiveRoot(s)), size: s.length, segments: Math.ceil(s.length / 1024) })
    expect(s.length).toBeLessThan(content.length + 4096 * 2) // the duplicates were not counted twice
    expect(await assertCommitmentOfDag(store, cid, { ...c, root: c.root.toUpperCase().replace('0X', '0x') })).toEqual(c)
    await expectCode(assertCommitmentOfDag(store, cid, { ...c, root: toHex(new Uint8Array(32)) }), 'ERR_COMMITMENT_MISMATCH')
    await expectCode(assertCommitmentOfDag(store, cid, { ...c, size: c.size + 1 }), 'ERR_COMMITMENT_MISMATCH')

    for (const index of [0, 1, 17, c.segments - 2, c.segments - 1]) {
      const p = await segmentProofOfDag(store, cid, index)
      expect(p.segment).toMatch(/^0x[0-9a-f]{2048}$/)
      for (const h of p.proof) expect(h).toMatch(/^0x[0-9a-f]{64}$/)
      expect(hex(fromHex(p.segment) as Uint8Array)).toBe(hex(naiveSegments(s)[index] as Uint8Array))
      expect(verifySegmentProof(c, index, p)).toBe(true)
      expect(verifySegmentProof(c, index === 0 ? 1 : 0, p)).toBe(false)
      expect(verifySegmentProof(c, index, { ...p, segment: p.segment.slice(0, -2) + (p.segment.endsWith('00') ? '01' : '00') })).toBe(false)
      expect(verifySegmentProof(c, index, { ...p, segment: 'zz' })).toBe(false)
    }
    await expectCode(segmentProofOfDag(store, cid, c.segments), 'ERR_SEGMENT_OUT_OF_RANGE')
  })

  it('the same content chunked differently is a different commitment', async () => {
    const content = randomBytes(30_000)
    const a = await commitmentOfDag(store, await add(content, 'size-4096', 4))
    const b = await commitmentOfDag(store, await add(content, 'size-8192', 4))
    expect(a.root).not.toBe(b.root)
  })

  it('an identity-hash root carries no bytes: ERR_EMPTY_COMMITMENT', async () => {
    const cid = CID.createV1(raw.code, identity.digest(new TextEncoder().encode('tiny')))
    await expectCode(commitmentOfDag(store, cid), 'ERR_EMPTY_COMMITMENT')
  })

  it('a missing block fails the walk instead of committing to less', async () => {
    const missing = CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
    await expectCode(commitmentOfDag(store, missing), 'ERR_BLOCK_MISSING')
  })
})
