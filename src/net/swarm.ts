import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { DialFailedError, InvalidMultiaddrError, PeerNotConnectedError } from './errors.ts'
import type { AbortOptions } from 'abort-error'
import type { Libp2p, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface SwarmPeer {
  peer: string
  addr: string
  direction: 'inbound' | 'outbound'
  /** Milliseconds since the connection opened. */
  age: number
  streams: number
  limited: boolean
}

export interface SwarmAddrs {
  /** Addresses the transports listen on. */
  listen: string[]
  /** Addresses this node tells peers to dial (listen, configured announce and observed ones). */
  announced: string[]
}

export interface Swarm {
  peers(): SwarmPeer[]
  /** Dials a multiaddr (with or without /p2p/); resolves to the peer id it reached. */
  connect(addr: string, options?: AbortOptions): Promise<string>
  /** Closes every connection to the peer named by a /p2p/ multiaddr or a bare peer id. */
  disconnect(target: string, options?: AbortOptions): Promise<string>
  addrs(): SwarmAddrs
  /** Addresses the peer store knows for each connected peer. */
  known(options?: AbortOptions): Promise<Record<string, string[]>>
}

export type SwarmComponents = Pick<Libp2p, 'getConnections' | 'dial' | 'hangUp' | 'getMultiaddrs' | 'peerStore'>

export function parseMultiaddr (text: string): Multiaddr {
  try {
    return multiaddr(text.trim())
  } catch (err) {
    throw new InvalidMultiaddrError(`invalid multiaddr "${text}": ${(err as Error).message}`, { cause: err })
  }
}

function peerOf (text: string): PeerId {
  const trimmed = text.trim()
  if (!trimmed.startsWith('/')) {
    try {
      return peerIdFromString(trimmed)
    } catch (err) {
      throw new InvalidMultiaddrError(`"${text}" is neither a multiaddr nor a peer id`, { cause: err })
    }
  }
  const id = parseMultiaddr(trimmed).getComponents().findLast(c => c.name === 'p2p')?.value
  if (id == null) throw new InvalidMultiaddrError(`"${text}" names no peer: add /p2p/<peer id>`)
  return peerIdFromString(id)
}

/** The swarm commands (Kubo's `swarm peers|connect|disconnect|addrs`) over a libp2p node. */
export function createSwarm (libp2p: SwarmComponents, listenAddrs: () => string[]): Swarm {
  return {
    peers () {
      const now = Date.now()
      return libp2p.getConnections().map(c => ({
        peer: c.remotePeer.toString(),
        addr: c.remoteAddr.decapsulateCode(421).toString(),
        direction: c.direction,
        age: now - c.timeline.open,
        streams: c.streams.length,
        limited: c.limits != null
      }))
    },

    async connect (addr, options) {
      const ma = parseMultiaddr(addr)
      try {
        const conn = await libp2p.dial(ma, options)
        return conn.remotePeer.toString()
      } catch (err) {
        throw new DialFailedError(`could not connect to ${addr}: ${(err as Error).message}`, { cause: err })
      }
    },

    async disconnect (target, options) {
      const peer = peerOf(target)
      if (libp2p.getConnections(peer).length === 0) {
        throw new PeerNotConnectedError(`not connected to ${peer.toString()}`)
      }
      await libp2p.hangUp(peer, options)
      return peer.toString()
    },

    addrs () {
      return {
        listen: listenAddrs(),
        announced: libp2p.getMultiaddrs().map(String)
      }
    },

    async known (options) {
      const out: Record<string, string[]> = {}
      const seen = new Set<string>()
      for (const c of libp2p.getConnections()) {
        const key = c.remotePeer.toString()
        if (seen.has(key)) continue
        seen.add(key)
        try {
          const peer = await libp2p.peerStore.get(c.remotePeer, options)
          out[key] = peer.addresses.map(a => a.multiaddr.toString())
        } catch {
          out[key] = [c.remoteAddr.toString()]
        }
      }
      return out
    }
  }
}
