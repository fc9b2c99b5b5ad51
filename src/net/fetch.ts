import { withBitswap } from '@helia/bitswap'
import { IDENTITY_CODE, hasherTable, readBlock, verifyBlock } from '../content/blocks.ts'
import { BlockFetchFailedError, NetworkNotStartedError } from './errors.ts'
import type { AbortOptions } from 'abort-error'
import type { Libp2p } from '@libp2p/interface'
import type { Blockstore } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'

export interface BlockExchangeComponents {
  /** A started libp2p host; bitswap registers its protocol on it and finds providers through its DHTs. */
  libp2p: Libp2p
  /** The repo's store: bitswap answers peers' wants from it, and fetched blocks are written into it. */
  blockstore: Blockstore
}

export interface BlockExchangeInit {
  maxInboundStreams?: number
}

/**
 * Bitswap on a libp2p host, and the pin manager's networked view of the repo's store: a block
 * missing locally is wanted from peers (found through the DHTs), re-hashed against its CID,
 * written into the store and announced to peers that want it.
 */
export interface BlockExchange {
  start(): Promise<void>
  stop(): Promise<void>
  readonly blockstore: Pick<Blockstore, 'get'>
}

/** The part of a Helia block broker this module calls (Helia's `BlockBroker`, as bitswap implements it). */
interface Broker {
  name: string
  start(): Promise<void>
  stop(): Promise<void>
  retrieve(cid: CID, options?: AbortOptions): Promise<Uint8Array>
  announce?(cid: CID, options?: AbortOptions): Promise<void>
}

interface Mixin {
  start?(host: unknown): Promise<void>
}

interface RoutedProvider {
  id: CID
  multiaddrs: Array<{ toString(): string }>
  router: string
}

/**
 * Helia's routing over libp2p (`libp2pRouting` in @helia/libp2p), the one call bitswap makes.
 * Written here because that package's index loads libp2p defaults pinbox never uses (autoTLS,
 * WebRTC, HTTP routers: ~1.8 s and ~140 MB at start-up). A provider record without addresses
 * is completed from the peer store, then by a peer lookup, as Helia's routing does.
 */
function libp2pRouting (libp2p: Libp2p): { findProviders(cid: CID, options?: AbortOptions): AsyncGenerator<RoutedProvider> } {
  return {
    async * findProviders (cid, options) {
      for await (const info of libp2p.contentRouting.findProviders(cid, options)) {
        let addrs = info.multiaddrs
        if (addrs.length === 0) {
          addrs = await libp2p.peerStore.get(info.id, options).then(p => p.addresses.map(a => a.multiaddr), () => [])
        }
        if (addrs.length === 0) {
          addrs = await libp2p.peerRouting.findPeer(info.id, options).then(p => p.multiaddrs, () => [])
        }
        if (addrs.length === 0) continue
        yield { id: info.id.toCID(), multiaddrs: addrs, router: 'libp2p-router' }
      }
    }
  }
}

/**
 * Runs @helia/bitswap without a Helia node. The package exports only `withBitswap(helia)`, a
 * mixin that, when the node starts, builds its block broker from the node's components; a small
 * host object plays that node. Helia itself is not loaded: its index pulls in @helia/libp2p and
 * @helia/http, more than half of the daemon's start-up time and idle memory.
 */
export function createBlockExchange (components: BlockExchangeComponents, init: BlockExchangeInit = {}): BlockExchange {
  const { libp2p, blockstore } = components
  const hashers = hasherTable()
  const brokers: Broker[] = []
  let mixin: Mixin | undefined
  let started = false

  const host = {
    status: 'stopped',
    libp2p,
    blockstore,
    routing: libp2pRouting(libp2p),
    logger: libp2p.logger,
    // bitswap hashes what it receives to match blocks to wants; sha2-256 it has built in
    getHasher: (code: number) => {
      const hasher = hashers.get(code)
      if (hasher == null) throw new BlockFetchFailedError(`no hasher for multihash code 0x${code.toString(16)}`)
      return hasher
    },
    hasBlockBroker: (name: string) => brokers.some(b => b.name === name),
    addBlockBroker: (broker: Broker) => { brokers.push(broker) },
    addMixin: (m: Mixin) => { mixin = m }
  }
  withBitswap(host as unknown as Parameters<typeof withBitswap>[0], init)

  async function fetchBlock (cid: CID, options?: AbortOptions): Promise<Uint8Array> {
    const broker = brokers[0]
    if (!started || broker == null) throw new NetworkNotStartedError()
    let block: Uint8Array
    try {
      block = await broker.retrieve(cid, options ?? {})
    } catch (err) {
      if (options?.signal?.aborted === true) throw options.signal.reason ?? err
      throw new BlockFetchFailedError(`could not fetch a verified copy of block ${cid.toString()} from any peer`, { cause: err })
    }
    // bitswap matches blocks to wants by their hash already; checked again so no path stores unverified bytes
    if (!(await verifyBlock(cid, block, hashers))) {
      throw new BlockFetchFailedError(`a peer sent bytes that do not hash to ${cid.toString()}`)
    }
    await blockstore.put(cid, block, options)
    // peers that asked us for this block while we fetched it get it now
    await broker.announce?.(cid, options)?.catch(() => {})
    return block
  }

  return {
    async start () {
      if (started) return
      if (brokers.length === 0) {
        host.status = 'starting'
        await mixin?.start?.(host)
        host.status = 'started'
      } else {
        await Promise.all(brokers.map(async b => { await b.start() }))
      }
      started = true
    },

    async stop () {
      if (!started) return
      started = false
      await Promise.all(brokers.map(async b => { await b.stop() }))
    },

    blockstore: {
      get (cid: CID, options?: AbortOptions) {
        return (async function * () {
          // identity CIDs carry their bytes and are never stored or fetched
          if (cid.multihash.code === IDENTITY_CODE) {
            yield await readBlock(blockstore, cid, options)
            return
          }
          if (await blockstore.has(cid, options)) {
            yield * blockstore.get(cid, options)
            return
          }
          yield await fetchBlock(cid, options)
        })()
      }
    }
  }
}
