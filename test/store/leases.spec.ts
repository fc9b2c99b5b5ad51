import { describe, it, expect } from 'vitest'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as dagPb from '@ipld/dag-pb'
import { sha256 } from 'multiformats/hashes/sha2'
import { createLeases } from '../../src/store/leases.ts'

async function cidOf (text: string): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode(text)))
}

describe('leases', () => {
  it('protects leased CIDs until the lease closes, by multihash', async () => {
    const leases = createLeases()
    const a = await cidOf('a')
    const lease = leases.open()
    expect(leases.isProtected(a)).toBe(false)
    lease.add(a)
    expect(leases.isProtected(a)).toBe(true)
    expect(leases.isProtected(CID.createV0(a.multihash as Parameters<typeof CID.createV0>[0]))).toBe(true)
    expect(leases.isProtected(CID.createV1(dagPb.code, a.multihash))).toBe(true)
    lease.close()
    expect(leases.isProtected(a)).toBe(false)
    expect(() => { lease.add(a) }).toThrow(expect.objectContaining({ code: 'ERR_LEASE_CLOSED' }))
  })

  it('counts overlapping leases', async () => {
    const leases = createLeases()
    const a = await cidOf('a')
    const l1 = leases.open()
    const l2 = leases.open()
    l1.add(a)
    l2.add(a)
    expect(leases.active).toBe(2)
    l1.close()
    l1.close()
    expect(leases.active).toBe(1)
    expect(leases.isProtected(a)).toBe(true)
    l2.close()
    expect(leases.active).toBe(0)
    expect(leases.isProtected(a)).toBe(false)
  })

  it('keeps CIDs leased before or during a GC run protected until endGc', async () => {
    const leases = createLeases()
    const [a, b, c] = await Promise.all([cidOf('a'), cidOf('b'), cidOf('c')])
    const before = leases.open()
    before.add(a)
    leases.beginGc()
    before.close()
    const during = leases.open()
    during.add(b)
    during.close()
    expect(leases.isProtected(a)).toBe(true)
    expect(leases.isProtected(b)).toBe(true)
    expect(leases.isProtected(c)).toBe(false)
    leases.endGc()
    expect(leases.isProtected(a)).toBe(false)
    expect(leases.isProtected(b)).toBe(false)
  })
})
