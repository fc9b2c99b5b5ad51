import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addFile, until, startNode, stopAll } from './helpers.ts'
import type { TestNode } from './helpers.ts'

const nodes: TestNode[] = []
const dirs: string[] = []
const COUNT = 10

describe('fetching pins from a network of 10 daemons', () => {
  let boot: TestNode
  let provider: TestNode
  let fetcher: TestNode

  beforeAll(async () => {
    boot = await startNode(undefined, dirs)
    nodes.push(boot)
    // one after another, at most 4 a second: libp2p refuses a host's 6th inbound connection within
    // a second (inboundConnectionThreshold 5; all are 127.0.0.1 here), and a node starts in well
    // under that, so unpaced starts would leave the later ones without their bootstrap connection
    const rest: TestNode[] = []
    for (let i = 1; i < COUNT; i++) {
      const started = Date.now()
      const node = await startNode(cfg => { cfg.swarm.bootstrap = [boot.addr] }, dirs)
      rest.push(node)
      await until('the bootstrap connection', () => node.node.libp2p().getConnections().length > 0)
      await new Promise(resolve => setTimeout(resolve, Math.max(0, 250 - (Date.now() - started))))
    }
    nodes.push(...rest)
    provider = rest[3] as TestNode
    fetcher = rest[rest.length - 1] as TestNode
    // every node has joined the pool DHT through the bootstrap node
    await until('routing tables', () => nodes.every(n => (n.node.libp2p().services.poolDHT as any).routingTable.size > 0))
  }, 60_000)

  afterAll(async () => { await stopAll(nodes, dirs) }, 30_000)

  it('pin add finds the provider through a DHT query, fetches and verifies every block', async () => {
    const data = randomBytes(200_000)
    const cid = await addFile(provider, data, { chunker: 'size-16384' })
    await until('the provider record', async () => (await provider.rpc('provide/stat')).body.Announced >= 1)

    const f = fetcher.node.libp2p()
    const providerId = provider.peerId
    // the fetcher knows the bootstrap node only: no connection to the provider beforehand
    if (f.getConnections().some(c => c.remotePeer.toString() === providerId)) {
      await f.hangUp(f.getConnections().find(c => c.remotePeer.toString() === providerId)!.remotePeer)
    }
    expect(f.getConnections().some(c => c.remotePeer.toString() === providerId)).toBe(false)

    // record what the pool DHT's provider queries return
    const dht = f.services.poolDHT as any
    const found: string[] = []
    const original = dht.findProviders.bind(dht)
    dht.findProviders = async function * (key: any, options: any) {
      for await (const event of original(key, options)) {
        if (event.name === 'PROVIDER') found.push(...event.providers.map((p: any) => p.id.toString()))
        yield event
      }
    }

    const res = await fetcher.rpc('pin/add', { arg: cid, progress: 'true' })
    expect(res.status).toBe(200)
    const lines = res.text.trim().split('\n').map(l => JSON.parse(l))
    expect(lines.at(-1)).toEqual({ Pins: [cid] })
    expect(lines.some(l => typeof l.Progress === 'number' && l.Progress > 1)).toBe(true)
    expect(found).toContain(providerId)

    const verify = await fetcher.rpc('pin/verify', { arg: cid, verbose: 'true' })
    expect(JSON.parse(verify.text.trim()).Ok).toBe(true)
    const cat = await fetch(`${fetcher.apiUrl}/cat?arg=${cid}`, { method: 'POST', headers: { authorization: `Bearer ${fetcher.token}` } })
    expect(Buffer.from(await cat.arrayBuffer()).equals(data)).toBe(true)
  }, 60_000)

  it('a timeout aborts the fetch and leaves no pin record', async () => {
    // content nobody has: a raw block CID of random bytes
    const absent = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
    const controller = new AbortController()
    const t0 = Date.now()
    setTimeout(() => { controller.abort() }, 1500)
    await expect(fetcher.rpc('pin/add', { arg: absent }, { signal: controller.signal })).rejects.toThrow()
    expect(Date.now() - t0).toBeLessThan(10_000)
    await until('the walk to end', async () => (await fetcher.rpc('pin/ls', { arg: absent })).status === 404, 5000)
    const ls = await fetcher.rpc('pin/ls', { type: 'recursive' })
    expect(Object.keys(ls.body.Keys)).not.toContain(absent)
  }, 30_000)

  it('swarm connect/peers/disconnect/addrs through the API', async () => {
    const a = nodes[1] as TestNode
    const b = nodes[2] as TestNode
    const bad = await a.rpc('swarm/connect', { arg: '/ip4/127.0.0.1/tcp/notaport' })
    expect(bad.status).toBe(400)
    expect(bad.body.Message).toContain('/ip4/127.0.0.1/tcp/notaport')

    const ok = await a.rpc('swarm/connect', { arg: b.addr })
    expect(ok.status).toBe(200)
    expect(ok.body).toEqual({ Strings: [`connect ${b.peerId} success`] })
    const peers = await a.rpc('swarm/peers')
    expect(peers.body.Peers.map((p: any) => p.Peer)).toContain(b.peerId)

    const addrs = await a.rpc('swarm/addrs')
    expect(addrs.body.Addrs[b.peerId]).toEqual(expect.arrayContaining([expect.stringMatching(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+/)]))
    const listen = await a.rpc('swarm/addrs/listen')
    expect(listen.body.Strings).toEqual([expect.stringMatching(/^\/ip4\/127\.0\.0\.1\/tcp\/[1-9]\d*$/)])

    const gone = await a.rpc('swarm/disconnect', { arg: b.addr })
    expect(gone.body).toEqual({ Strings: [`disconnect ${b.peerId} success`] })
    expect(a.node.libp2p().getConnections().some(c => c.remotePeer.toString() === b.peerId)).toBe(false)
    const again = await a.rpc('swarm/disconnect', { arg: b.peerId })
    expect(again.status).toBe(404)
  }, 30_000)
})
