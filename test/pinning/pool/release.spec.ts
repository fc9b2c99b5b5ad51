import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PIN_PROTOCOL } from '../../../src/pinning/pool/index.ts'
import { addFile, cleanup, connect, trackedPeer } from './utils.ts'
import type { Peer } from './utils.ts'
import type { CID } from 'multiformats/cid'

const PINS = 40

describe('removing many replicated pins at once', () => {
  const dirs: string[] = []
  const peers: Peer[] = []
  let A: Peer, B: Peer

  beforeAll(async () => {
    const make = async (): Promise<Peer> => await trackedPeer(peers, dirs)
    ;[A, B] = await Promise.all([make(), make()]) as [Peer, Peer]
    const members = [A.id, B.id]
    await A.startPool({ members, sharePerMember: 10 * 1024 * 1024 })
    await B.startPool({ members, sharePerMember: 10 * 1024 * 1024 })
    await connect(A, B)
  }, 30_000)

  afterAll(async () => { await cleanup(peers, dirs) })

  it('releases them on the holder in a few batched requests, not one stream per pin', async () => {
    const cids: CID[] = []
    for (let i = 0; i < PINS; i++) cids.push(await addFile(A, 2000 + i))
    const replication = A.pool!.replication
    await Promise.all(cids.map(async cid => { await replication.replicate(cid, { replicas: 2 }) }))
    for (const cid of cids) {
      const settled = await replication.settled(cid)
      expect(settled.status.filter(s => s.state === 'pinned').map(s => s.peer).sort()).toEqual([A.id, B.id].sort())
    }
    expect((await B.pool!.usage(A.id)) > 0).toBe(true)

    let pinStreams = 0
    const dial = A.libp2p.dialProtocol.bind(A.libp2p)
    A.libp2p.dialProtocol = (async (peer: any, protocols: any, options?: any) => {
      if ([protocols].flat().includes(PIN_PROTOCOL)) pinStreams++
      return await dial(peer, protocols, options)
    }) as typeof A.libp2p.dialProtocol
    try {
      // as `pin/rm` with many args: several removes at once
      await Promise.all(cids.map(async cid => { await replication.remove(cid) }))
    } finally {
      A.libp2p.dialProtocol = dial
    }

    for (const cid of cids) expect(await B.pins.get(cid)).toBeUndefined()
    expect(await B.pool!.usage(A.id)).toBe(0)
    expect(pinStreams).toBeGreaterThan(0)
    expect(pinStreams).toBeLessThanOrEqual(3)
  }, 30_000)
})
