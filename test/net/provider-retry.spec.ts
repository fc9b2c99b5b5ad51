import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { Level } from 'level'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createProvider, dhtRouter } from '../../src/net/provider.ts'
import { startNode, stopAll, until } from './helpers.ts'
import type { Provider } from '../../src/net/provider.ts'
import type { Pin } from '../../src/pinning/types.ts'
import type { TestNode } from './helpers.ts'

/**
 * Retries of announcements that reached no DHT peer, over real nodes and their pool DHT. A node
 * started alone has an empty routing table, so an announcement waits for a peer until its timeout
 * and fails; the retry then has to reach the peer it meets later. The provider under test runs
 * beside the node's own (which announces nothing here: no pin is made through the node).
 */
const nodes: TestNode[] = []
const dirs: string[] = []
const noPins = { ls: async function * () {}, reachable: async function * () {} }
const noBlocks = { cids: async function * () {} }

async function cidOf (): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(randomBytes(32)))
}

function pinOf (cid: CID): Pin {
  return { cid, type: 'recursive' } as unknown as Pin
}

/** Provider peer ids a pool DHT query from `node` returns for `cid`. */
async function findProviders (node: TestNode, cid: CID): Promise<string[]> {
  const found: string[] = []
  for await (const event of node.node.libp2p().services.poolDHT!.findProviders(cid, { signal: AbortSignal.timeout(10_000) })) {
    if (event.name === 'PROVIDER') found.push(...event.providers.map(p => p.id.toString()))
  }
  return found
}

describe('provider retries over a real DHT', () => {
  let boot: TestNode
  let db: Level<string, any> | undefined
  let provider: Provider | undefined

  beforeAll(async () => {
    boot = await startNode(undefined, dirs)
    nodes.push(boot)
  }, 30_000)
  afterEach(async () => {
    await provider?.stop()
    provider = undefined
    await db?.close()
    db = undefined
  })
  afterAll(async () => { await stopAll(nodes, dirs) }, 30_000)

  /** A node with no peer, and a provider over its pool DHT whose announcements give up after 500 ms. */
  async function lonelyProvider (init: { retryMs: number, withEvents: boolean }): Promise<{ node: TestNode, provider: Provider }> {
    const node = await startNode(undefined, dirs)
    nodes.push(node)
    const libp2p = node.node.libp2p()
    db = new Level(join(node.repo, 'retry-test-db'), { valueEncoding: 'json' })
    await db.open()
    provider = createProvider({
      db,
      routers: [dhtRouter('pool', libp2p.services.poolDHT!)],
      pins: noPins as any,
      blockstore: noBlocks as any,
      ...(init.withEvents ? { events: libp2p } : {})
    }, { retryMs: init.retryMs, peerRetryDelayMs: 200, provideTimeoutMs: 500, initialDelayMs: 3_600_000 })
    await provider.start()
    return { node, provider }
  }

  async function meetBoot (node: TestNode): Promise<void> {
    await node.node.libp2p().dial(multiaddr(boot.addr))
  }

  it('tries again shortly after a peer is identified, and the record is found through the DHT', async () => {
    const { node, provider } = await lonelyProvider({ retryMs: 3_600_000, withEvents: true })
    const cid = await cidOf()
    provider.onPinned(pinOf(cid), [])
    await until('the failed announcement', async () => (await provider.stat()).failed === 1, 10_000)
    expect(await provider.stat()).toMatchObject({ announced: 0, retrying: 1, total: 0 })

    await meetBoot(node)
    await until('the retried announcement', async () => (await provider.stat()).announced === 1, 10_000)
    const stat = await provider.stat()
    expect(stat).toMatchObject({ retrying: 0, total: 1 })
    expect(stat.recent[0]?.cid).toBe(cid.toString())
    expect(await findProviders(boot, cid)).toContain(node.peerId)
  }, 45_000)

  it('without peer events, tries again retryMs after the failure', async () => {
    const { node, provider } = await lonelyProvider({ retryMs: 2_000, withEvents: false })
    const cid = await cidOf()
    provider.onPinned(pinOf(cid), [])
    await until('the failed announcement', async () => (await provider.stat()).failed === 1, 10_000)
    const failedAt = Date.now()
    await meetBoot(node)
    await until('the retried announcement', async () => (await provider.stat()).announced === 1, 10_000)
    // nothing but the timer could have retried it
    expect(Date.now() - failedAt).toBeGreaterThanOrEqual(1_500)
    expect((await provider.stat()).retrying).toBe(0)
  }, 45_000)

  it('does not retry what was unpinned meanwhile', async () => {
    const { node, provider } = await lonelyProvider({ retryMs: 3_600_000, withEvents: true })
    const kept = await cidOf()
    const dropped = await cidOf()
    provider.onPinned(pinOf(kept), [])
    provider.onPinned(pinOf(dropped), [])
    await until('the failed announcements', async () => (await provider.stat()).failed === 2, 10_000)
    provider.onUnpinned(pinOf(dropped))
    expect((await provider.stat()).retrying).toBe(1)

    await meetBoot(node)
    await until('the retried announcement', async () => (await provider.stat()).announced === 1, 10_000)
    const stat = await provider.stat()
    expect(stat.recent.map(r => r.cid)).toEqual([kept.toString()])

  }, 45_000)
})
