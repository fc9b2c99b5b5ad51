import { createHash } from 'node:crypto'

/** Orders the members a CID's replicas may go to, most preferred first. */
export type Placement = (cid: string, members: readonly string[]) => string[]

/**
 * The order in which a pin's replicas are offered to pool members: rendezvous (highest random
 * weight) hashing, each member scored by sha256(cid ‖ peer id). Taking members in list order put
 * every replica of every pin on the first members of `pool.members` and none on the last ones;
 * this spreads pins evenly over any member list, every node computes the same order for a CID,
 * and a member joining or leaving moves only the replicas whose top scores it changes.
 */
export function placementOrder (cid: string, members: readonly string[]): string[] {
  return members
    .map(peer => ({ peer, score: createHash('sha256').update(cid).update('\0').update(peer).digest() }))
    .sort((a, b) => Buffer.compare(b.score, a.score))
    .map(m => m.peer)
}
