import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as dagPb from '@ipld/dag-pb'
import { varint } from 'multiformats'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as raw from 'multiformats/codecs/raw'
import { encodeCarHeader } from '../../../src/content/car.ts'
import { readBlock as readBlockFrom } from '../../../src/content/blocks.ts'
import { walkDag } from '../../../src/content/dag-walk.ts'
import { DAG_PROTOCOL } from '../../../src/pinning/pool/index.ts'
import { createDagServer, fetchDag } from '../../../src/pinning/pool/transfer.ts'
import { createBufferPool } from '../../../src/store/buffer-pool.ts'
import { createSealWatch } from '../../../src/net/seal-watch.ts'
import type { BufferPool } from '../../../src/store/buffer-pool.ts'
import { addFile, cleanup, connect, trackedPeer } from './utils.ts'
import type { Peer } from './utils.ts'
import type { RepoBlockstore } from '../../../src/store/types.ts'
import type { Libp2p, Stream, StreamHandler } from '@libp2p/interface'

const MIB = 1024 * 1024

function section (cid: CID, bytes: Uint8Array): Uint8Array {
  const len = cid.bytes.length + bytes.length
  const prefix = new Uint8Array(varint.encodingLength(len))
  varint.encodeTo(len, prefix)
  return Buffer.concat([prefix, cid.bytes, bytes])
}

async function rawBlock (bytes: Uint8Array): Promise<{ cid: CID, bytes: Uint8Array }> {
  return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes }
}

async function pbNode (links: CID[]): Promise<{ cid: CID, bytes: Uint8Array }> {
  const bytes = dagPb.encode({ Links: links.map(Hash => ({ Hash, Tsize: 1 })) })
  return { cid: CID.createV1(dagPb.code, await sha256.digest(bytes)), bytes }
}

async function walked (blockstore: Pick<RepoBlockstore, 'get'>, root: CID): Promise<string[]> {
  const out: string[] = []
  for await (const block of walkDag(blockstore, root)) out.push(block.cid.toString())
  return out
}

describe('DAG transfer between real libp2p peers', () => {
  const dirs: string[] = []
  const peers: Peer[] = []
  // H holds (its DAG server counts what it hands the stream); R receives; F serves hand-made CARs
  let H: Peer, R: Peer, F: Peer
  let handedToStream = 0
  let sendCalls = 0

  beforeAll(async () => {
    const make = async (): Promise<Peer> => await trackedPeer(peers, dirs)
    ;[H, R, F] = await Promise.all([make(), make(), make()]) as [Peer, Peer, Peer]
    // the holder's real DAG server, its stream's send counted
    const counting: Pick<Libp2p, 'handle' | 'unhandle'> = {
      handle: async (protocol, handler: StreamHandler, options) => {
        await H.libp2p.handle(protocol, async (stream: Stream, connection) => {
          const send = stream.send.bind(stream)
          stream.send = (data) => {
            handedToStream += data.byteLength
            sendCalls++
            return send(data)
          }
          await handler(stream, connection)
        }, options)
      },
      unhandle: async (protocol) => { await H.libp2p.unhandle(protocol) }
    }
    const server = createDagServer({ libp2p: counting, blockstore: H.repo.blockstore, isMember: () => true })
    await server.start()
    await connect(R, H)
    await connect(R, F)
  }, 30_000)

  afterAll(async () => { await cleanup(peers, dirs) })

  it('holds back a holder faster than the receiver\'s store: a few MiB in flight, never the whole DAG, and every block lands', async () => {
    const size = 96 * MIB
    const root = await addFile(H, size, MIB)
    // a store that takes 15 ms per block, one at a time: far slower than loopback
    let stored = 0
    let maxAhead = 0
    let chain = Promise.resolve()
    const slow: Pick<RepoBlockstore, 'put' | 'has' | 'delete'> = {
      has: async (cid) => await R.repo.blockstore.has(cid),
      delete: async (cid) => { await R.repo.blockstore.delete(cid) },
      put: async (cid, bytes) => {
        const turn = chain.then(async () => {
          await new Promise(resolve => setTimeout(resolve, 15))
          await R.repo.blockstore.put(cid, bytes)
          stored += (bytes as Uint8Array).byteLength
          maxAhead = Math.max(maxAhead, handedToStream - stored)
        })
        chain = turn.catch(() => {})
        await turn
        return cid
      }
    }
    handedToStream = 0
    const lease = R.repo.leases.open()
    const result = await fetchDag({ libp2p: R.libp2p, blockstore: slow }, H.libp2p.peerId, { roots: [root], maxBytes: size + MIB, lease })
    lease.close()
    expect(result.bytes).toBeGreaterThan(size)
    expect(result.blocks).toBe(97)
    expect(result.dags[0]?.blocks.map(b => b.cid.toString())).toEqual(await walked(R.repo.blockstore, root))
    // what the holder may run ahead by: yamux's stream window (<= 16 MiB) in transit, as much again
    // received while paused, the 4 MiB high-water mark, 8 writes in flight and one send
    expect(maxAhead).toBeLessThan(56 * MIB)
    expect(maxAhead).toBeGreaterThan(0)
    // the CIDs it hands back own their bytes: a view into a received section would keep every block alive
    for (const { cid } of result.dags[0]!.blocks) expect(Math.max(cid.bytes.buffer.byteLength, cid.multihash.bytes.buffer.byteLength)).toBeLessThan(1024)
  }, 60_000)

  it('receives into the store\'s own write slots, each written from where it was received and given back', async () => {
    const size = 24 * MIB
    const root = await addFile(H, size, MIB)
    const slots = R.repo.blockstore.writeBuffers
    expect(slots).toBeDefined()
    const directBefore = (R.repo.blockstore as unknown as { directWrites: number }).directWrites
    const lease = R.repo.leases.open()
    sendCalls = 0
    const result = await fetchDag({ libp2p: R.libp2p, blockstore: R.repo.blockstore, buffers: slots }, H.libp2p.peerId, { roots: [root], maxBytes: size + MIB, lease })
    lease.close()
    expect(result.blocks).toBe(25)
    // the holder sent each leaf in one send with its section's prefix (and the header and root
    // section with the first): one muxer frame per block, not a tiny one for the prefix besides
    expect(sendCalls).toBe(24)
    // the 1 MiB leaves were written directly, and read back they hash to their CIDs
    expect((R.repo.blockstore as unknown as { directWrites: number }).directWrites - directBefore).toBe(24)
    for (const { cid } of result.dags[0]!.blocks) {
      const bytes = await readBlockFrom(R.repo.blockstore, cid)
      expect((await sha256.digest(bytes)).digest, cid.toString()).toEqual(cid.multihash.digest)
    }
    // every slot came back: twelve can be lent again
    const held = Array.from({ length: 12 }, () => slots?.take(MIB) as Uint8Array)
    expect(held.every(v => v.buffer.byteLength > MIB)).toBe(true)
    for (const v of held) slots?.release(v)
  })

  it('reuses a pool\'s buffers for the received blocks, each one only after its put has returned', async () => {
    const size = 24 * MIB
    const root = await addFile(H, size, MIB)
    const buffers = createBufferPool({ maxFree: 4 })
    // a store that reads the bytes it was given only after a pause: a buffer handed back (and
    // refilled with the next block) before put() returns would land here as the wrong bytes
    const copies = new Map<string, Uint8Array>()
    const late: Pick<RepoBlockstore, 'put' | 'has' | 'delete'> = {
      has: async (cid) => copies.has(cid.toString()),
      delete: async (cid) => { copies.delete(cid.toString()) },
      put: async (cid, bytes) => {
        await new Promise(resolve => setTimeout(resolve, 2))
        copies.set(cid.toString(), Uint8Array.from(bytes as Uint8Array))
        return cid
      }
    }
    const lease = R.repo.leases.open()
    const result = await fetchDag({ libp2p: R.libp2p, blockstore: late, buffers }, H.libp2p.peerId, { roots: [root], maxBytes: size + MIB, lease })
    lease.close()
    expect(result.blocks).toBe(25)
    for (const [key, bytes] of copies) {
      const cid = CID.parse(key)
      expect((await sha256.digest(bytes)).digest, key).toEqual(cid.multihash.digest)
    }
    // the 1 MiB leaves went through the pool and came back to it
    expect(buffers.free).toBeGreaterThan(0)
  })

  it('starts sync passes as the blocks land, so the pin\'s own sync finds only the last few files', async () => {
    const size = 80 * MIB
    const root = await addFile(H, size, MIB)
    let bytesWritten = 0
    const atSync: number[] = []
    const counting: Pick<RepoBlockstore, 'put' | 'has' | 'delete' | 'putNew' | 'sync'> = {
      has: async (cid) => await R.repo.blockstore.has(cid),
      delete: async (cid) => { await R.repo.blockstore.delete(cid) },
      put: async (cid, bytes) => await R.repo.blockstore.put(cid, bytes),
      putNew: async (cid, bytes) => {
        const wrote = await R.repo.blockstore.putNew(cid, bytes)
        if (wrote) bytesWritten += bytes.byteLength
        return wrote
      },
      sync: async () => {
        atSync.push(bytesWritten)
        await R.repo.blockstore.sync()
      }
    }
    const lease = R.repo.leases.open()
    await fetchDag({ libp2p: R.libp2p, blockstore: counting }, H.libp2p.peerId, { roots: [root], maxBytes: size + MIB, lease })
    lease.close()
    // one pass per 32 MiB written, each started once that much had landed
    expect(atSync.length).toBe(2)
    expect(atSync[0]).toBeGreaterThanOrEqual(32 * MIB)
    expect(atSync[1]).toBeGreaterThanOrEqual(64 * MIB)
  }, 60_000)

  it('lists each root\'s blocks in walk order, a block shared between roots sent and written once', async () => {
    const leaves = await Promise.all([1, 2, 3, 4].map(async n => await rawBlock(new Uint8Array(1000).fill(n))))
    const inner = await pbNode([leaves[1]!.cid, leaves[2]!.cid])
    const outer = await pbNode([leaves[0]!.cid, inner.cid, leaves[3]!.cid, leaves[1]!.cid])
    for (const b of [...leaves, inner, outer]) await H.repo.blockstore.put(b.cid, b.bytes)
    const lease = R.repo.leases.open()
    const result = await fetchDag({ libp2p: R.libp2p, blockstore: R.repo.blockstore }, H.libp2p.peerId, { roots: [outer.cid, inner.cid], maxBytes: MIB, lease })
    lease.close()
    expect(result.blocks).toBe(6)
    expect(result.dags.map(d => d.root.toString())).toEqual([outer.cid.toString(), inner.cid.toString()])
    expect(result.dags[0]?.blocks.map(b => b.cid.toString())).toEqual(await walked(H.repo.blockstore, outer.cid))
    expect(result.dags[1]?.blocks.map(b => b.cid.toString())).toEqual(await walked(H.repo.blockstore, inner.cid))
    expect(result.dags[1]?.bytes).toBe(inner.bytes.byteLength + 2000)
  })

  it('sends from reused buffers, each given back only once noise has sealed it: the receiver verifies every block', async () => {
    const sealWatch = createSealWatch()
    const S = await trackedPeer(peers, dirs, { sealWatch })
    // a pool that scribbles over a buffer as it takes it back: one given back before noise copied
    // its bytes would reach the receiver as a block whose hash does not match
    const inner = createBufferPool({ maxFree: 32 })
    const handedOut = new WeakSet<ArrayBufferLike>()
    let allocated = 0
    let released = 0
    const pool: BufferPool = {
      take: (size) => {
        if (inner.free === 0) allocated++
        const view = inner.take(size)
        handedOut.add(view.buffer)
        return view
      },
      // like the real pool, it ignores buffers it did not hand out (the sender offers it every chunk)
      release: (view) => {
        if (!handedOut.has(view.buffer)) return
        handedOut.delete(view.buffer)
        released++
        view.fill(0xee)
        inner.release(view)
      },
      get free () { return inner.free }
    }
    const server = createDagServer({ libp2p: S.libp2p, blockstore: S.repo.blockstore, isMember: () => true, buffers: pool, sealWatch })
    await server.start()
    await connect(R, S)
    // 64 leaves of 1 MiB (each sent as it is), and 256 of 16 KiB (gathered into batches)
    const big = await addFile(S, 64 * MIB, MIB)
    const small = await addFile(S, 4 * MIB, 16 * 1024)
    const lease = R.repo.leases.open()
    const result = await fetchDag({ libp2p: R.libp2p, blockstore: R.repo.blockstore }, S.libp2p.peerId, { roots: [big, small], maxBytes: 70 * MIB, lease })
    // 64 leaves and their root; 256 leaves under two inner nodes (at most 174 links each) and a root
    expect(result.blocks).toBe(64 + 1 + 256 + 2 + 1)
    // single blocks (a repair) go through the pool too
    const leaves = result.dags[0]!.blocks.slice(1, 9).map(b => b.cid)
    await Promise.all(leaves.map(async cid => { await R.repo.blockstore.delete(cid) }))
    const repaired = await fetchDag({ libp2p: R.libp2p, blockstore: R.repo.blockstore }, S.libp2p.peerId, { blocks: leaves, maxBytes: 9 * MIB, lease })
    lease.close()
    expect(repaired.blocks).toBe(8)
    // every leaf went out of a pooled buffer and came back; far fewer were ever allocated
    expect(released).toBeGreaterThanOrEqual(64 + 256 + 8)
    expect(allocated).toBeLessThan(40)
    await server.stop()
  }, 60_000)

  it('sends from the store\'s direct-read slots, past the page cache, every slot given back', async () => {
    const sealWatch = createSealWatch()
    const S = await trackedPeer(peers, dirs, { sealWatch })
    const slots = S.repo.blockstore.readBuffers
    expect(slots).toBeDefined()
    const server = createDagServer({ libp2p: S.libp2p, blockstore: S.repo.blockstore, isMember: () => true, buffers: slots, sealWatch })
    await server.start()
    await connect(R, S)
    // 48 leaves of 1 MiB: twice the 24 slots, so slots are read into again; the receiver checks every
    // block (the release timing itself is tested above, with a pool that scribbles over what it gets back)
    const root = await addFile(S, 48 * MIB, MIB)
    const before = (S.repo.blockstore as unknown as { directReads: number }).directReads
    const lease = R.repo.leases.open()
    try {
      const result = await fetchDag({ libp2p: R.libp2p, blockstore: R.repo.blockstore }, S.libp2p.peerId, { roots: [root], maxBytes: 49 * MIB, lease })
      expect(result.blocks).toBe(48 + 1)
    } finally {
      lease.close()
    }
    expect((S.repo.blockstore as unknown as { directReads: number }).directReads - before).toBe(48)
    expect(slots?.free).toBe(24)
    await server.stop()
  }, 60_000)

  describe('a holder that lies', () => {
    let send: Uint8Array[] = []
    beforeAll(async () => {
      await F.libp2p.handle(DAG_PROTOCOL, async (stream) => {
        for (const part of send) stream.send(part)
        await stream.close()
      })
    })

    const leafA = rawBlock(new Uint8Array(5000).fill(7))
    const leafB = rawBlock(new Uint8Array(5000).fill(8))
    const stray = rawBlock(new Uint8Array(5000).fill(9))

    async function fetchFrom (root: CID): Promise<unknown> {
      const lease = R.repo.leases.open()
      try {
        return await fetchDag({ libp2p: R.libp2p, blockstore: R.repo.blockstore }, F.libp2p.peerId, { roots: [root], maxBytes: MIB, lease })
      } finally {
        lease.close()
      }
    }

    it('by leaving out a block at a section boundary: ERR_TRANSFER_INCOMPLETE, nothing kept', async () => {
      const a = await leafA
      const b = await leafB
      const root = await pbNode([a.cid, b.cid])
      send = [encodeCarHeader([root.cid]), section(root.cid, root.bytes), section(a.cid, a.bytes)]
      const before = R.repo.blockstore.stat()
      await expect(fetchFrom(root.cid)).rejects.toMatchObject({ code: 'ERR_TRANSFER_INCOMPLETE' })
      expect(R.repo.blockstore.stat()).toEqual(before)
      expect(await R.repo.blockstore.has(a.cid)).toBe(false)
    })

    it('by adding a block no asked DAG links to: ERR_POOL_PROTOCOL, nothing kept', async () => {
      const a = await leafA
      const s = await stray
      const root = await pbNode([a.cid])
      send = [encodeCarHeader([root.cid]), section(root.cid, root.bytes), section(a.cid, a.bytes), section(s.cid, s.bytes)]
      const before = R.repo.blockstore.stat()
      await expect(fetchFrom(root.cid)).rejects.toMatchObject({ code: 'ERR_POOL_PROTOCOL' })
      expect(R.repo.blockstore.stat()).toEqual(before)
      expect(await R.repo.blockstore.has(s.cid)).toBe(false)
    })

    it('by sending wrong bytes for a block: ERR_BLOCK_HASH_MISMATCH, nothing kept, every store slot given back', async () => {
      const a = await leafA
      const big = await rawBlock(randomBytes(200_000))
      const root = await pbNode([big.cid, a.cid])
      const forged = Uint8Array.from(big.bytes)
      forged[1000] = (forged[1000] as number) ^ 1
      send = [encodeCarHeader([root.cid]), section(root.cid, root.bytes), section(big.cid, forged)]
      // received into the store's own write slots, as a pool member does: one not given back would be lost to it
      const slots = R.repo.blockstore.writeBuffers
      expect(slots).toBeDefined()
      const lease = R.repo.leases.open()
      try {
        await expect(fetchDag({ libp2p: R.libp2p, blockstore: R.repo.blockstore, buffers: slots }, F.libp2p.peerId, { roots: [root.cid], maxBytes: MIB, lease }))
          .rejects.toMatchObject({ code: 'ERR_BLOCK_HASH_MISMATCH' })
      } finally {
        lease.close()
      }
      expect(await R.repo.blockstore.has(big.cid)).toBe(false)
      expect(await R.repo.blockstore.has(root.cid)).toBe(false)
      const free = slots?.free ?? 0
      const held = Array.from({ length: 12 }, () => slots?.take(100_000) as Uint8Array)
      // all twelve slots can be lent again (a plain buffer would be exactly 100000 bytes long)
      expect(held.every(v => v.buffer.byteLength > 100_000)).toBe(true)
      for (const v of held) slots?.release(v)
      expect(slots?.free).toBeGreaterThanOrEqual(free)
    })

    it('by sending wrong bytes for a big leaf followed by good ones: its hash, checked on the thread pool, still stops the transfer and nothing is kept', async () => {
      const a = await leafA
      const big = await rawBlock(randomBytes(300_000))
      const after = await Promise.all([1, 2, 3].map(async () => await rawBlock(randomBytes(150_000))))
      const root = await pbNode([big.cid, a.cid, ...after.map(b => b.cid)])
      const forged = Uint8Array.from(big.bytes)
      forged[299_999] = (forged[299_999] as number) ^ 0x80
      // the forged leaf is still being hashed while the good ones behind it arrive and are checked
      send = [encodeCarHeader([root.cid]), section(root.cid, root.bytes), section(big.cid, forged), section(a.cid, a.bytes), ...after.map(b => section(b.cid, b.bytes))]
      const before = R.repo.blockstore.stat()
      await expect(fetchFrom(root.cid)).rejects.toMatchObject({ code: 'ERR_BLOCK_HASH_MISMATCH' })
      for (const cid of [big.cid, a.cid, root.cid, ...after.map(b => b.cid)]) expect(await R.repo.blockstore.has(cid)).toBe(false)
      expect(R.repo.blockstore.stat()).toEqual(before)
    })

    it('by cutting a section short: ERR_CAR_TRUNCATED', async () => {
      const a = await leafA
      const root = await pbNode([a.cid])
      const cut = section(a.cid, a.bytes)
      send = [encodeCarHeader([root.cid]), section(root.cid, root.bytes), cut.subarray(0, cut.byteLength - 10)]
      await expect(fetchFrom(root.cid)).rejects.toMatchObject({ code: 'ERR_CAR_TRUNCATED' })
      expect(await R.repo.blockstore.has(root.cid)).toBe(false)
    })
  })
})
