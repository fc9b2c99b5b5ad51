import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { localReplication } from '../../src/pinning/local-replication.ts'
import { collect, createHarness, makeDag, rawBlock } from './utils.ts'
import type { Harness } from './utils.ts'

async function codeOf (p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
  } catch (err) {
    return (err as { code?: string }).code
  }
  throw new Error('expected a rejection')
}

describe('localReplication: a lone box\'s replication manager', () => {
  let h: Harness

  beforeEach(async () => { h = await createHarness() })
  afterEach(async () => { await h.close() })

  it('replicates as a durable local recursive pin with one replica, itself', async () => {
    const dag = await makeDag(h.blockstore, 'local', 5)
    const replication = localReplication(h.pins, { peerId: 'me' })
    const replicated = await replication.replicate(dag.root, { replicas: 1, name: 'n', meta: { a: 'b' } })
    expect(replicated).toMatchObject({ replicas: 1, name: 'n', meta: { a: 'b' }, status: [{ peer: 'me', state: 'pinned' }] })
    expect(await h.pins.get(dag.root)).toMatchObject({ type: 'recursive', name: 'n', metadata: { a: 'b' }, blocks: 6 })
    expect((await replication.status(dag.root))?.cid.equals(dag.root)).toBe(true)
    expect((await replication.settled(dag.root)).status[0]?.state).toBe('pinned')
    expect((await replication.update(dag.root, { name: 'renamed' })).name).toBe('renamed')
    expect((await collect(replication.list())).map(p => p.cid.toString())).toEqual([dag.root.toString()])
    await replication.remove(dag.root)
    expect(await h.pins.get(dag.root)).toBeUndefined()
    expect(await replication.status(dag.root)).toBeUndefined()
  })

  it('refuses more than one replica, pinning nothing', async () => {
    const cid = await rawBlock(h.blockstore, new Uint8Array([1, 2, 3]))
    const replication = localReplication(h.pins)
    expect(await codeOf(replication.replicate(cid, { replicas: 2 }))).toBe('ERR_REPLICATION_UNAVAILABLE')
    expect(await h.pins.get(cid)).toBeUndefined()
  })

  it('does not count a direct pin as a replica, and says so for unknown CIDs', async () => {
    const cid = await rawBlock(h.blockstore, new Uint8Array([4, 5, 6]))
    await h.pins.add(cid, { recursive: false })
    const replication = localReplication(h.pins)
    expect(await replication.status(cid)).toBeUndefined()
    expect(await codeOf(replication.remove(cid))).toBe('ERR_NOT_REPLICATED')
    expect(await codeOf(replication.update(cid, { name: 'x' }))).toBe('ERR_NOT_REPLICATED')
    expect(await codeOf(replication.settled(cid))).toBe('ERR_NOT_REPLICATED')
    expect(await h.pins.get(cid)).toMatchObject({ type: 'direct' })
  })
})
