import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { MemoryBlockstore } from 'blockstore-core/memory'
import * as dagPb from '@ipld/dag-pb'
import type { CID } from 'multiformats/cid'
import { startAnvil, deploy } from '../helpers/anvil.ts'
import type { Anvil } from '../helpers/anvil.ts'
import { commitmentOfDag, segmentProofOfDag } from '../../src/rewards/commitment.ts'
import { commit, proofOf, segmentAt } from './segment-tree.ts'

async function blockBytes (store: MemoryBlockstore, cid: CID): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  for await (const chunk of store.get(cid)) chunks.push(chunk)
  return Buffer.concat(chunks)
}

/** S by the words: every block reachable from the root, DFS pre-order, distinct. */
async function contentBytes (store: MemoryBlockstore, root: CID): Promise<Buffer> {
  const out: Uint8Array[] = []
  const seen = new Set<string>()
  const visit = async (cid: CID): Promise<void> => {
    if (seen.has(cid.toString())) return
    seen.add(cid.toString())
    const bytes = await blockBytes(store, cid)
    out.push(bytes)
    if (cid.code === dagPb.code) {
      for (const link of dagPb.decode(bytes).Links) await visit(link.Hash)
    }
  }
  await visit(root)
  return Buffer.concat(out)
}

describe('storage commitment: node library vs an independent implementation vs the contract', () => {
  let anvil: Anvil
  let storage: any

  beforeAll(async () => {
    anvil = await startAnvil({ hardfork: 'cancun' })
    const admin = anvil.wallet(0)
    const token = await deploy('PinboxToken', admin, ['Pinbox', 'PIN', 10n ** 27n, admin.address])
    storage = await deploy('PinboxStorage', admin, [await token.getAddress(), admin.address, {
      epochLength: 20, proofWindow: 5, unbondingDelay: 10, faultThreshold: 2, faultWindow: 10, slashBps: 5000, bountyBps: 1000, emissionPerByteEpoch: 0
    }])
  })
  afterAll(async () => { await anvil?.stop() })

  it('gives the same root, size and segments for a random DAG with shared blocks, and proofs the contract accepts', async () => {
    const store = new MemoryBlockstore()
    const repeated = randomBytes(16 * 1024)
    const a = Buffer.concat([repeated, repeated, randomBytes(50_000 + Math.floor(Math.random() * 1000))])
    const files = [
      { path: 'a.bin', content: a },
      { path: 'b.bin', content: a }, // every block shared with a.bin
      { path: 'c.bin', content: randomBytes(777) }
    ]
    let root: CID | undefined
    for await (const entry of importer(files, store, {
      wrapWithDirectory: true, rawLeaves: true, cidVersion: 1, chunker: fixedSize({ chunkSize: 16 * 1024 })
    })) root = entry.cid
    if (root == null) throw new Error('nothing imported')

    const s = await contentBytes(store, root)
    const mine = commit(s)
    const theirs = await commitmentOfDag(store, root, { workers: 0 })
    expect(theirs).toEqual({ root: mine.root, size: s.length, segments: mine.segments })
    // the shared blocks count once: S is smaller than the sum of the blocks walked with repeats
    expect(s.length).toBeLessThan(2 * a.length)

    for (const index of [0, 1, Math.floor(mine.segments / 2), mine.segments - 1]) {
      const proof = await segmentProofOfDag(store, root, index)
      expect(proof.segment).toBe('0x' + segmentAt(s, index).toString('hex'))
      expect(proof.proof).toEqual(proofOf(mine.levels, index))
      expect(await storage.verifySegment(mine.root, mine.segments, index, proof.segment, proof.proof)).toBe(true)
      expect(await storage.verifySegment(mine.root, mine.segments, (index + 1) % mine.segments, proof.segment, proof.proof)).toBe(false)
    }
  })
})
