/**
 * A set of multihashes kept as 64-bit fingerprints in two typed arrays: the GC's mark set.
 *
 * A `Set<string>` of 500,000 base32 multihash keys is ~40 MB of heap objects that V8 must trace
 * on every full collection, and building it allocated a string per CID; a 256 MiB add running
 * during that mark phase ran at half its speed. Here each multihash costs 8 bytes in a flat table
 * (~8 MB for 500,000 at the load factor below) and nothing for the collector to trace. No
 * package offers a compact set of 64-bit keys without an object per entry, so it is written here.
 *
 * A fingerprint is the digest's first 8 bytes mixed with the hash function's code. Two different
 * multihashes may share one (1 in 2^64 for real hash functions): `has` then says yes for a block
 * that is not reachable, so the GC keeps a block it could have removed, never the reverse.
 */
import { varint } from 'multiformats'

const EMPTY_HI = 0
const EMPTY_LO = 0

export class DigestSet {
  private hi: Uint32Array
  private lo: Uint32Array
  private used = 0
  /** A fingerprint of all zero bits marks an empty slot, so it is kept aside. */
  private hasZero = false

  constructor (expected = 1024) {
    const slots = tableSize(expected)
    this.hi = new Uint32Array(slots)
    this.lo = new Uint32Array(slots)
  }

  get size (): number {
    return this.used + (this.hasZero ? 1 : 0)
  }

  /** `multihash`: the bytes of a multihash (code, length, digest), as `cid.multihash.bytes`. */
  add (multihash: Uint8Array): void {
    const [hi, lo] = fingerprint(multihash)
    if (hi === EMPTY_HI && lo === EMPTY_LO) {
      this.hasZero = true
      return
    }
    if ((this.used + 1) * 4 > this.hi.length * 3) this.grow()
    if (this.insert(hi, lo)) this.used++
  }

  has (multihash: Uint8Array): boolean {
    const [hi, lo] = fingerprint(multihash)
    if (hi === EMPTY_HI && lo === EMPTY_LO) return this.hasZero
    const mask = this.hi.length - 1
    for (let i = lo & mask; ; i = (i + 1) & mask) {
      const h = this.hi[i] as number
      const l = this.lo[i] as number
      if (h === hi && l === lo) return true
      if (h === EMPTY_HI && l === EMPTY_LO) return false
    }
  }

  /** Linear probing; false when the fingerprint was already there. */
  private insert (hi: number, lo: number): boolean {
    const mask = this.hi.length - 1
    for (let i = lo & mask; ; i = (i + 1) & mask) {
      const h = this.hi[i] as number
      const l = this.lo[i] as number
      if (h === hi && l === lo) return false
      if (h === EMPTY_HI && l === EMPTY_LO) {
        this.hi[i] = hi
        this.lo[i] = lo
        return true
      }
    }
  }

  private grow (): void {
    const { hi, lo } = this
    this.hi = new Uint32Array(hi.length * 2)
    this.lo = new Uint32Array(lo.length * 2)
    for (let i = 0; i < hi.length; i++) {
      const h = hi[i] as number
      const l = lo[i] as number
      if (h !== EMPTY_HI || l !== EMPTY_LO) this.insert(h, l)
    }
  }
}

/** A power of two with room for `expected` entries at a load of at most 3/4. */
function tableSize (expected: number): number {
  let n = 16
  while (n * 3 < expected * 4) n *= 2
  return n
}

/** The digest's first 8 bytes (zero-padded when shorter) as two 32-bit halves, xored with the code. */
function fingerprint (multihash: Uint8Array): [number, number] {
  const [code, codeLength] = varint.decode(multihash)
  const [, lengthLength] = varint.decode(multihash, codeLength)
  const start = codeLength + lengthLength
  let hi = 0
  let lo = 0
  for (let i = 0; i < 8; i++) {
    const byte = multihash[start + i] ?? 0
    if (i < 4) hi = (hi << 8) | byte
    else lo = (lo << 8) | byte
  }
  // lo indexes the table: spread the code into it so equal digests under two functions differ
  lo = (lo ^ Math.imul(code, 0x9e3779b1)) >>> 0
  return [hi >>> 0, lo]
}
