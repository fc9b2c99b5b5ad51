import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import * as Digest from 'multiformats/hashes/digest'
import { DigestSet } from '../../src/store/digest-set.ts'

const SHA2_256 = 0x12
const BLAKE3 = 0x1e
const mh = (code: number, digest: Uint8Array): Uint8Array => Digest.create(code, digest).bytes

describe('DigestSet', () => {
  it('holds 200,000 multihashes through its growth and finds no others', () => {
    const set = new DigestSet(16)
    const added = Array.from({ length: 200_000 }, () => mh(SHA2_256, randomBytes(32)))
    for (const m of added) set.add(m)
    for (const m of added) set.add(m)
    expect(set.size).toBe(200_000)
    expect(added.every(m => set.has(m))).toBe(true)
    let falsePositives = 0
    for (let i = 0; i < 200_000; i++) if (set.has(mh(SHA2_256, randomBytes(32)))) falsePositives++
    expect(falsePositives).toBe(0)
  })

  it('tells the same digest under two hash functions apart, and handles short and all-zero digests', () => {
    const set = new DigestSet()
    const digest = randomBytes(32)
    set.add(mh(SHA2_256, digest))
    expect(set.has(mh(SHA2_256, digest))).toBe(true)
    expect(set.has(mh(BLAKE3, digest))).toBe(false)

    const zeros = mh(0x00, new Uint8Array(0))
    expect(set.has(zeros)).toBe(false)
    set.add(zeros)
    expect(set.has(zeros)).toBe(true)
    expect(set.size).toBe(2)

    const short = mh(0x00, Uint8Array.of(1, 2, 3))
    set.add(short)
    expect(set.has(short)).toBe(true)
    expect(set.has(mh(0x00, Uint8Array.of(1, 2, 4)))).toBe(false)
  })
})
