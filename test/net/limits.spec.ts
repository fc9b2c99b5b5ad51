import { afterAll, describe, expect, it } from 'vitest'
import { startNode, stopAll } from './helpers.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import type { TestNode } from './helpers.ts'
import type { PinboxConfig } from '../../src/store/config.ts'

const nodes: TestNode[] = []
const dirs: string[] = []
afterAll(async () => { await stopAll(nodes, dirs) }, 30_000)

// no DHTs: their closest peers get keep-alive tags of their own, which the pruner leaves alone;
// these tests set the tags they mean
const noDht = (cfg: PinboxConfig): void => { cfg.dht.amino.enabled = false; cfg.dht.pool.enabled = false }

describe('connection and stream limits', () => {
  it('crossing the high watermark prunes down to the low one', async () => {
    const hub = await startNode(cfg => { noDht(cfg); cfg.swarm.connections = { low: 2, high: 4 } }, dirs)
    nodes.push(hub)
    const peers: TestNode[] = []
    for (let i = 0; i < 4; i++) peers.push(await startNode(noDht, dirs))
    nodes.push(...peers)
    for (const p of peers.slice(0, 3)) expect((await p.rpc('swarm/connect', { arg: hub.addr })).status).toBe(200)
    expect(hub.node.libp2p().getConnections().length).toBe(3)
    // the fourth connection reaches `high`: the hub trims to `low` in one go, not to high - 1
    expect((await (peers[3] as TestNode).rpc('swarm/connect', { arg: hub.addr })).status).toBe(200)
    const end = Date.now() + 5000
    while (hub.node.libp2p().getConnections().length > 2 && Date.now() < end) {
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    expect(hub.node.libp2p().getConnections().length).toBe(2)
    // and it stays there: nobody redials a pruned plain peer
    await new Promise(resolve => setTimeout(resolve, 500))
    expect(hub.node.libp2p().getConnections().length).toBe(2)
  }, 30_000)

  it('keep-alive peers are not pruned (libp2p would redial them at once)', async () => {
    const hub = await startNode(cfg => { noDht(cfg); cfg.swarm.connections = { low: 1, high: 3 } }, dirs)
    nodes.push(hub)
    const peers: TestNode[] = []
    for (let i = 0; i < 3; i++) peers.push(await startNode(noDht, dirs))
    nodes.push(...peers)
    const closed: string[] = []
    hub.node.libp2p().addEventListener('connection:close', (e) => { closed.push(e.detail.remotePeer.toString()) })
    for (const p of peers.slice(0, 2)) expect((await p.rpc('swarm/connect', { arg: hub.addr })).status).toBe(200)
    const ids = peers.map(p => p.peerId)
    for (const id of ids.slice(0, 2)) {
      await hub.node.libp2p().peerStore.merge(peerIdFromString(id), { tags: { 'keep-alive-test': { value: 1 } } })
    }
    expect((await (peers[2] as TestNode).rpc('swarm/connect', { arg: hub.addr })).status).toBe(200)
    const end = Date.now() + 5000
    while (!closed.includes(ids[2] as string) && Date.now() < end) await new Promise(resolve => setTimeout(resolve, 50))
    // only the untagged third peer went, though that leaves the hub above its low mark
    expect(closed).toEqual([ids[2]])
  }, 30_000)

  it('per-protocol inbound stream limits come from swarm.inboundStreams', async () => {
    const node = await startNode(cfg => { cfg.swarm.inboundStreams = { bitswap: 7, dht: 5, identify: 3, ping: 2 } }, dirs)
    nodes.push(node)
    const registrar = (node.node.libp2p() as any).components.registrar
    const limit = (protocol: string): number => registrar.getHandler(protocol).options.maxInboundStreams
    expect(limit('/ipfs/bitswap/1.2.0')).toBe(7)
    expect(limit('/pinbox/default/kad/1.0.0')).toBe(5)
    expect(limit('/ipfs/id/1.0.0')).toBe(3)
    expect(limit('/ipfs/ping/1.0.0')).toBe(2)
  }, 30_000)
})
