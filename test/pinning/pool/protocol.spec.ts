import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeCarHeader } from '../../../src/content/car.ts'
import { readBlock } from '../../../src/content/blocks.ts'
import { walkDag } from '../../../src/content/dag-walk.ts'
import { DAG_PROTOCOL, verifyReceipt } from '../../../src/pinning/pool/index.ts'
import { requestPins, requestStatus } from '../../../src/pinning/pool/pin-protocol.ts'
import { fetchDag } from '../../../src/pinning/pool/transfer.ts'
import { addFile, cleanup, connect, trackedPeer } from './utils.ts'
import { varint } from 'multiformats'
import type { Peer } from './utils.ts'
import type { CID } from 'multiformats/cid'

const SHARE = 10 * 1024 * 1024

function section (cid: CID, bytes: Uint8Array): Uint8Array {
  const len = cid.bytes.length + bytes.length
  const prefix = new Uint8Array(varint.encodingLength(len))
  varint.encodeTo(len, prefix)
  return Buffer.concat([prefix, cid.bytes, bytes])
}

const inListOrder = (_cid: string, members: readonly string[]): string[] => [...members]

async function until (check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting')
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

describe('pool protocols between real libp2p peers', () => {
  const dirs: string[] = []
  const peers: Peer[] = []
  // A asks; B and E are roomy; C has a tiny share for A; D a tiny disk; H is the spare; L lies; S is no member
  let A: Peer, B: Peer, C: Peer, D: Peer, E: Peer, H: Peer, L: Peer, S: Peer

  beforeAll(async () => {
    const make = async (maxBytes?: number): Promise<Peer> => await trackedPeer(peers, dirs, maxBytes == null ? {} : { maxBytes })
    ;[A, B, C, D, E, H, L, S] = await Promise.all([make(), make(), make(), make(100 * 1024), make(), make(), make(), make()]) as [Peer, Peer, Peer, Peer, Peer, Peer, Peer, Peer]
    const members = [A, B, C, D, E, H, L].map(p => p.id)
    // members are offered replicas in list order here (the default is rendezvous order), so the
    // refusals and the replacement below meet the members this scenario set up for them
    await A.startPool({ members, sharePerMember: SHARE, healthIntervalMs: 200, gracePeriodMs: 800, placement: inListOrder })
    await B.startPool({ members, sharePerMember: SHARE })
    await C.startPool({ members, sharePerMember: 150 * 1024 })
    await D.startPool({ members, sharePerMember: SHARE })
    await E.startPool({ members, sharePerMember: SHARE })
    await H.startPool({ members, sharePerMember: SHARE })
    await S.startPool({ members: [S.id, B.id], sharePerMember: SHARE })
    for (const p of [B, C, D, E, H, L, S]) await connect(A, p)
    for (const p of [L, S]) await connect(p, B)
  }, 30_000)

  afterAll(async () => { await cleanup(peers, dirs) })

  let X: CID
  let xBytes: number

  it('replicates to 3 members, skipping refusals (over-share, over-quota), with receipts signed by the holders', async () => {
    X = await addFile(A, 200 * 1024)
    const pool = A.pool!
    const first = await pool.replication.replicate(X, { replicas: 3, name: 'x' })
    expect(first.status[0]).toMatchObject({ peer: A.id, state: 'pinned' })
    expect(first.status.slice(1).map(s => s.state)).toEqual(['queued', 'queued'])

    const done = await pool.replication.settled(X)
    const byPeer = new Map(done.status.map(s => [s.peer, s]))
    expect(byPeer.get(B.id)?.state).toBe('pinned')
    expect(byPeer.get(C.id)).toMatchObject({ state: 'failed', reason: 'over-share' })
    expect(byPeer.get(D.id)).toMatchObject({ state: 'failed', reason: 'over-quota' })
    expect(byPeer.get(E.id)?.state).toBe('pinned')
    expect(done.status.filter(s => s.state === 'pinned')).toHaveLength(3)

    xBytes = (await A.pins.get(X))!.bytes
    for (const holder of [B, E]) {
      const receipt = await verifyReceipt(byPeer.get(holder.id)!.receipt!)
      expect(receipt).toMatchObject({ cid: X.toString(), peer: holder.id, requester: A.id, size: xBytes })
      expect(await holder.pins.get(X)).toBeDefined()
      expect(await holder.pool!.usage(A.id)).toBe(xBytes)
    }
    // nothing of X was left on the refusing members
    expect(await C.pins.get(X)).toBeUndefined()
    expect(await D.repo.blockstore.has(X)).toBe(false)

    // a forged receipt (payload changed) does not verify
    const raw = JSON.parse(Buffer.from(byPeer.get(B.id)!.receipt!, 'base64').toString())
    const payload = JSON.parse(Buffer.from(raw.p, 'base64').toString())
    raw.p = Buffer.from(JSON.stringify({ ...payload, size: payload.size + 1 })).toString('base64')
    expect(await verifyReceipt(Buffer.from(JSON.stringify(raw)).toString('base64'))).toBeUndefined()
  })

  it('refuses a stranger, on the pin protocol and the DAG protocol', async () => {
    const cid = await addFile(S, 10 * 1024)
    await expect(requestPins({ libp2p: S.libp2p }, B.libp2p.peerId, [{ cid, size: 10 * 1024 }]))
      .rejects.toMatchObject({ code: 'ERR_POOL_REFUSED', reason: 'not-a-member' })
    const lease = S.repo.leases.open()
    await expect(fetchDag({ libp2p: S.libp2p, blockstore: S.repo.blockstore }, B.libp2p.peerId, { roots: [X], maxBytes: 1e9, lease })).rejects.toThrow()
    lease.close()
    expect(await S.repo.blockstore.has(X)).toBe(false)
  })

  it('aborts a transfer bigger than the size it was claimed with, keeping nothing', async () => {
    const Y = await addFile(A, 300 * 1024)
    const before = B.repo.blockstore.stat()
    const [result] = await requestPins({ libp2p: A.libp2p }, B.libp2p.peerId, [{ cid: Y, size: 1000 }])
    expect(result).toMatchObject({ ok: false, reason: 'too-large' })
    expect(await B.pins.get(Y)).toBeUndefined()
    expect(B.repo.blockstore.stat()).toEqual(before)
  })

  it('rejects a holder that sends a block not matching its CID, storing none of its blocks', async () => {
    const Z = await addFile(L, 200 * 1024)
    const blocks: Array<{ cid: CID, bytes: Uint8Array }> = []
    for await (const block of walkDag(L.repo.blockstore, Z)) blocks.push(block)
    // the liar sends the root and one good leaf, then a leaf whose bytes were changed
    await L.libp2p.handle(DAG_PROTOCOL, async (stream) => {
      const root = blocks[0]!
      const good = blocks[1]!
      const bad = blocks[2]!
      const tampered = Uint8Array.from(await readBlock(L.repo.blockstore, bad.cid))
      tampered[0] = tampered[0]! ^ 0xff
      stream.send(Buffer.concat([encodeCarHeader([Z]), section(root.cid, root.bytes), section(good.cid, good.bytes), section(bad.cid, tampered)]))
      await stream.close()
    })
    const before = B.repo.blockstore.stat()
    const [result] = await requestPins({ libp2p: L.libp2p }, B.libp2p.peerId, [{ cid: Z, size: 200 * 1024 + 1000 }])
    expect(result).toMatchObject({ ok: false, reason: 'fetch-failed' })
    expect(B.repo.blockstore.stat()).toEqual(before)
    expect(await B.repo.blockstore.has(blocks[1]!.cid)).toBe(false)

    // and fetchDag itself names the mismatch
    const lease = B.repo.leases.open()
    await expect(fetchDag({ libp2p: B.libp2p, blockstore: B.repo.blockstore }, L.libp2p.peerId, { roots: [Z], maxBytes: 1e9, lease }))
      .rejects.toMatchObject({ code: 'ERR_BLOCK_HASH_MISMATCH' })
    lease.close()
    expect(await B.repo.blockstore.has(blocks[0]!.cid)).toBe(false)
  })

  it('keeps replication state across a restart of the requester', async () => {
    const before = await A.pool!.replication.status(X)
    await A.pool!.stop()
    const pool = await A.startPool({ members: [A, B, C, D, E, H, L].map(p => p.id), sharePerMember: SHARE, healthIntervalMs: 200, gracePeriodMs: 800, placement: inListOrder })
    expect(await pool.replication.status(X)).toEqual(before)
    expect(await requestStatus({ libp2p: A.libp2p }, B.libp2p.peerId, [X])).toEqual([true])
  })

  it('replaces a holder unreachable past the grace period with another member', async () => {
    await E.stop()
    peers.splice(peers.indexOf(E), 1)
    await until(async () => {
      const s = await A.pool!.replication.status(X)
      return s?.status.find(r => r.peer === H.id)?.state === 'pinned'
    })
    const status = (await A.pool!.replication.status(X))!
    expect(status.status.find(r => r.peer === E.id)).toMatchObject({ state: 'failed' })
    expect(status.status.find(r => r.peer === E.id)?.reason).toMatch(/^unreachable/)
    expect(status.status.filter(s => s.state === 'pinned').map(s => s.peer).sort()).toEqual([A.id, B.id, H.id].sort())
    expect(await H.pins.get(X)).toBeDefined()
  })

  it('removing releases the remote replicas: holders unpin and free the share', async () => {
    await A.pool!.replication.remove(X)
    expect(await A.pool!.replication.status(X)).toBeUndefined()
    expect(await A.pins.get(X)).toBeUndefined()
    for (const holder of [B, H]) {
      expect(await holder.pins.get(X)).toBeUndefined()
      expect(await holder.pool!.usage(A.id)).toBe(0)
    }
  })
})
