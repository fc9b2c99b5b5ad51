import type { Connection, PeerStore, Startable, TypedEventTarget, Libp2pEvents } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

export interface ConnectionPrunerInit {
  /** Prune down to this many connections. */
  low: number
  /** Start pruning when a new connection takes the count to this many. */
  high: number
}

export interface ConnectionPrunerComponents {
  connectionManager: Pick<ConnectionManager, 'getConnections'>
  peerStore: Pick<PeerStore, 'get'>
  events: TypedEventTarget<Libp2pEvents>
}

/**
 * libp2p 3's connection manager has one limit (`maxConnections`) and trims to exactly that, so a
 * busy box would trim one connection per new one. Kubo's low/high watermarks trim in one go
 * to the low mark, leaving room to grow; this service adds that on top. Peers tagged
 * keep-alive (bootstrap, pool members, the DHT's closest peers) stay; among the rest, least valued
 * and oldest go first.
 */
const KEEP_ALIVE_VALUE = 1e9

export function connectionPruner (init: ConnectionPrunerInit): (components: ConnectionPrunerComponents) => Startable {
  return (components) => {
    let pruning = false
    const value = async (c: Connection): Promise<number> => {
      try {
        const peer = await components.peerStore.get(c.remotePeer)
        let total = 0
        for (const [name, tag] of peer.tags) total += name.startsWith('keep-alive') ? KEEP_ALIVE_VALUE : tag.value
        return total
      } catch {
        return 0
      }
    }
    const prune = async (): Promise<void> => {
      const conns = components.connectionManager.getConnections()
      if (pruning || conns.length < init.high) return
      pruning = true
      try {
        const ranked = await Promise.all(conns.map(async c => ({ c, v: await value(c) })))
        ranked.sort((a, b) => a.v - b.v || a.c.timeline.open - b.c.timeline.open)
        // keep-alive peers are never pruned: libp2p redials them at once, so closing one only
        // churns a connection (seen with the DHT's closest peers)
        const excess = ranked.filter(({ v }) => v < KEEP_ALIVE_VALUE).slice(0, Math.max(0, conns.length - init.low))
        await Promise.all(excess.map(async ({ c }) => { await c.close().catch(() => c.abort(new Error('pruned'))) }))
      } finally {
        pruning = false
      }
    }
    const onOpen = (): void => { void prune() }
    return {
      start () {
        components.events.addEventListener('connection:open', onOpen)
      },
      stop () {
        components.events.removeEventListener('connection:open', onOpen)
      }
    }
  }
}
