import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addFile, until, startNode, stopAll } from './helpers.ts'
import type { TestNode } from './helpers.ts'

const nodes: TestNode[] = []
const dirs: string[] = []

/** Provider peer ids a pool DHT query from `node` returns for `cid`. */
async function findProviders (node: TestNode, cid: string): Promise<string[]> {
  const found: string[] = []
  for await (const event of node.node.libp2p().services.poolDHT!.findProviders(CID.parse(cid), { signal: AbortSignal.timeout(10_000) })) {
    if (event.name === 'PROVIDER') found.push(...event.providers.map(p => p.id.toString()))
  }
  return found
}

/** The blocks below the node's (only) recursive pin. */
async function blocksOf (node: TestNode): Promise<string[]> {
  const res = await node.rpc('pin/ls', { type: 'indirect' })
  return Object.keys(res.body.Keys)
}

describe('providing pins', () => {
  let boot: TestNode
  let roots: TestNode
  let pinned: TestNode
  let finder: TestNode

  beforeAll(async () => {
    boot = await startNode(undefined, dirs)
    nodes.push(boot)
    roots = await startNode(cfg => { cfg.swarm.bootstrap = [boot.addr] }, dirs)
    pinned = await startNode(cfg => {
      cfg.swarm.bootstrap = [boot.addr]
      cfg.provide.strategy = 'pinned'
      cfg.provide.interval = '3s'
    }, dirs)
    finder = await startNode(cfg => { cfg.swarm.bootstrap = [boot.addr] }, dirs)
    nodes.push(roots, pinned, finder)
    await until('routing tables', () => nodes.every(n => (n.node.libp2p().services.poolDHT as any).routingTable.size > 0))
  }, 30_000)

  afterAll(async () => { await stopAll(nodes, dirs) }, 30_000)

  it('roots: a pin is announced at once, found through the DHT, and leaves the schedule on unpin', async () => {
    const cid = await addFile(roots, randomBytes(40_000), { chunker: 'size-8192' })
    await until('the announcement', async () => (await roots.rpc('provide/stat')).body.Total === 1)
    const stat = (await roots.rpc('provide/stat')).body
    expect(stat).toMatchObject({ Strategy: 'roots', Interval: 22 * 3_600_000, Total: 1, Failed: 0 })
    expect(stat.Announced).toBeGreaterThanOrEqual(1)
    expect(stat.Recent[0].Cid).toBe(cid)
    expect(stat.NextRun).toBeGreaterThan(Date.now())
    // Kubo's name for the same numbers
    expect((await roots.rpc('stats/provide')).body.TotalProvides).toBe(stat.Announced)

    expect(await findProviders(finder, cid)).toContain(roots.peerId)
    // roots only: the leaves are not announced
    const leaf = (await blocksOf(roots))[0] as string
    expect(await findProviders(finder, leaf)).not.toContain(roots.peerId)

    expect((await roots.rpc('pin/rm', { arg: cid })).status).toBe(200)
    await until('the withdrawal', async () => (await roots.rpc('provide/stat')).body.Total === 0)
  }, 30_000)

  it('pinned: every block of a recursive pin is announced; a pass after unpin empties the schedule', async () => {
    const cid = await addFile(pinned, randomBytes(40_000), { chunker: 'size-8192' })
    const blocks = await blocksOf(pinned)
    expect(blocks.length).toBeGreaterThanOrEqual(5)
    await until('every block announced', async () => (await pinned.rpc('provide/stat')).body.Total === blocks.length + 1)
    const leaf = blocks[blocks.length - 1] as string
    expect(await findProviders(finder, leaf)).toContain(pinned.peerId)

    expect((await pinned.rpc('pin/rm', { arg: cid })).status).toBe(200)
    const removedAt = Date.now()
    // the next scheduled pass (interval 3 s) drops the blocks no pin holds any more
    await until('the next pass', async () => {
      const s = (await pinned.rpc('provide/stat')).body
      return s.Total === 0 && s.LastRun >= removedAt
    }, 10_000)
  }, 30_000)
})
