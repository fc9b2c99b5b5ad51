import { randomBytes } from 'node:crypto'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { withBitswap } from '@helia/bitswap'
import { withLibp2pLight } from '@helia/libp2p'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { MemoryDatastore } from 'datastore-core/memory'
import { createHeliaLight } from 'helia'
import { CID } from 'multiformats/cid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addFile, startNode, stopAll } from './helpers.ts'
import type { TestNode } from './helpers.ts'

const nodes: TestNode[] = []
const dirs: string[] = []

describe('a peer that sends wrong block bytes', () => {
  let honest: TestNode
  let fetcher: TestNode
  let evil: Awaited<ReturnType<typeof startEvil>>
  let cid: string
  let evilGets = 0

  /** A bare Helia node whose blockstore answers every want for `target` with random bytes. */
  async function startEvil (target: CID): Promise<{ addr: string, stop(): Promise<void> }> {
    const store = new MemoryBlockstore()
    await store.put(target, randomBytes(1000))
    const get = store.get.bind(store)
    store.get = (key, options) => { evilGets++; return get(key, options) }
    const helia = withBitswap(withLibp2pLight(createHeliaLight({ blockstore: store, datastore: new MemoryDatastore(), blockBrokers: [], routers: [] }), {
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify() }
    }))
    await helia.start()
    return { addr: helia.libp2p.getMultiaddrs()[0]?.toString() ?? '', stop: async () => { await helia.stop() } }
  }

  beforeAll(async () => {
    honest = await startNode(undefined, dirs)
    fetcher = await startNode(undefined, dirs)
    nodes.push(honest, fetcher)
    cid = await addFile(honest, randomBytes(5000))
    evil = await startEvil(CID.parse(cid))
  }, 30_000)

  afterAll(async () => {
    await evil?.stop()
    await stopAll(nodes, dirs)
  })

  it('is ignored: the pin waits, nothing corrupt is stored, an honest peer then completes it', async () => {
    expect((await fetcher.rpc('swarm/connect', { arg: evil.addr })).status).toBe(200)
    const controller = new AbortController()
    setTimeout(() => { controller.abort() }, 2500)
    await expect(fetcher.rpc('pin/add', { arg: cid }, { signal: controller.signal })).rejects.toThrow()
    // the evil peer was asked and answered
    expect(evilGets).toBeGreaterThan(0)
    // the wrong bytes never reached the store, and no pin points at them
    expect((await fetcher.rpc('block/stat', { arg: cid })).status).toBe(404)
    await new Promise(resolve => setTimeout(resolve, 200))
    expect(Object.keys((await fetcher.rpc('pin/ls', { type: 'recursive' })).body.Keys)).toEqual([])

    // still connected to the liar, an honest peer appears: the same pin now completes
    expect((await fetcher.rpc('swarm/connect', { arg: honest.addr })).status).toBe(200)
    const ok = await fetcher.rpc('pin/add', { arg: cid })
    expect(ok.body).toEqual({ Pins: [cid] })
    const verify = await fetcher.rpc('pin/verify', { arg: cid, verbose: 'true' })
    expect(JSON.parse(verify.text.trim()).Ok).toBe(true)
  }, 30_000)
})
