import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { mdns } from '@libp2p/mdns'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { afterAll, describe, expect, it } from 'vitest'
import { startNode, stopAll } from './helpers.ts'
import type { TestNode } from './helpers.ts'
import type { Libp2p } from '@libp2p/interface'

const nodes: TestNode[] = []
const dirs: string[] = []
let other: Libp2p | undefined
afterAll(async () => {
  await other?.stop()
  await stopAll(nodes, dirs)
}, 30_000)

async function knows (node: TestNode, peer: string): Promise<boolean> {
  return (await node.node.libp2p().peerStore.all()).some(p => p.id.toString() === peer)
}

// multicast works on this sandbox's loopback, so this runs the real thing, not just the wiring
describe('mDNS', () => {
  it('pinbox nodes find each other under their own service name, not libp2p\'s default one', async () => {
    // a plain libp2p node announcing under the default _p2p._udp.local (what Kubo-like peers use)
    other = await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      peerDiscovery: [mdns({ interval: 200 })]
    })
    const a = await startNode(cfg => { cfg.swarm.mdns = true }, dirs)
    const b = await startNode(cfg => { cfg.swarm.mdns = true }, dirs)
    const off = await startNode(cfg => { cfg.swarm.mdns = false }, dirs)
    nodes.push(a, b, off)

    // b's start-up query is answered by a at once (a itself only asks again every 10 s)
    const end = Date.now() + 8000
    while (!(await knows(b, a.peerId)) && Date.now() < end) {
      await new Promise(resolve => setTimeout(resolve, 200))
    }
    expect(await knows(b, a.peerId)).toBe(true)
    expect(await knows(b, other.peerId.toString())).toBe(false)
    expect(await knows(b, off.peerId)).toBe(false)
    expect(await knows(off, a.peerId)).toBe(false)
  }, 20_000)
})
