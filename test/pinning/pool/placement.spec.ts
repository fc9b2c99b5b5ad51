import { describe, expect, it } from 'vitest'
import { placementOrder } from '../../../src/pinning/pool/placement.ts'

const members = ['12D3KooWA', '12D3KooWB', '12D3KooWC', '12D3KooWD']
const cids = Array.from({ length: 4000 }, (_, i) => `bafkreicid${i}`)

describe('replica placement (rendezvous hashing)', () => {
  it('is the same order for a CID whatever order the member list is in', () => {
    for (const cid of cids.slice(0, 50)) {
      expect(placementOrder(cid, [...members].reverse())).toEqual(placementOrder(cid, members))
    }
  })

  it('spreads two replicas per pin evenly over four members (the list order put them all on the first two)', () => {
    const held = new Map(members.map(m => [m, 0]))
    for (const cid of cids) for (const m of placementOrder(cid, members).slice(0, 2)) held.set(m, (held.get(m) ?? 0) + 1)
    // 8000 replicas over 4 members: 2000 each expected; binomial spread is ~±30
    for (const count of held.values()) expect(Math.abs(count - 2000)).toBeLessThan(200)
  })

  it('a member leaving moves only the replicas it held', () => {
    const rest = members.filter(m => m !== '12D3KooWC')
    for (const cid of cids.slice(0, 500)) {
      const before = placementOrder(cid, members).slice(0, 2)
      const after = placementOrder(cid, rest).slice(0, 2)
      if (!before.includes('12D3KooWC')) expect(after).toEqual(before)
      else expect(after).toEqual(expect.arrayContaining(before.filter(m => m !== '12D3KooWC')))
    }
  })
})
