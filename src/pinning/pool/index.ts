import { circuitRelayServer } from '@libp2p/circuit-relay-v2'
import { createDagServer, DIRECT_SEND_BYTES } from './transfer.ts'
import { createPinServer } from './pin-protocol.ts'
import { createBufferPool } from '../../store/buffer-pool.ts'
import type { BufferPool } from '../../store/buffer-pool.ts'
import type { SealWatch } from '../../net/seal-watch.ts'
import { createReplicationManager } from './replication.ts'
import type { Placement } from './placement.ts'
import type { PinDb } from '../pin-manager.ts'
import type { ReplicationManager } from '../replication-types.ts'
import type { PinManager } from '../types.ts'
import type { BlockLeases, RepoBlockstore } from '../../store/types.ts'
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'
import type { Libp2pOptions } from 'libp2p'

export { DAG_PROTOCOL, PIN_PROTOCOL, verifyReceipt } from './messages.ts'
export type { ReceiptPayload, Refusal } from './messages.ts'

export interface PoolComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>
  pins: PinManager
  blockstore: RepoBlockstore
  leases: BlockLeases
  db: PinDb
  privateKey: PrivateKey
  peerId: PeerId
  /** Buffers for received replica blocks (src/pinning/pool/transfer.ts), shared by the pool's fetches. */
  buffers: BufferPool
  /**
   * With `sealWatch`: buffers the blocks sent to members are read into, each taken back once the
   * connection's cipher has sealed it (src/net/seal-watch.ts).
   */
  sendBuffers?: BufferPool
  /** Reports what noise has sealed; the node wires it to its cipher. Without it every block sent gets a new buffer. */
  sealWatch?: SealWatch
}

/** What a pool takes from the node's repo: its store, leases, metadata database and identity. */
export type PoolRepo = Pick<PoolComponents, 'blockstore' | 'leases' | 'db' | 'privateKey' | 'peerId'>

/** Blocks of up to 1 MiB (pinbox's chunk size) in flight at once per fetch, with room for a second fetch's; let go when idle. */
const RECEIVE_BUFFERS = { bufferBytes: 1024 * 1024, maxFree: 12, idleMs: 10_000 }
/**
 * A sending stream holds its read-ahead (8 blocks), the stream window (4 MiB) and what waits in
 * noise's queue for the socket; let go when idle. Smaller blocks are copied into batches at once
 * and read into buffers of their size: with a pooled 1 MiB buffer each, the read-ahead of
 * the dozens of streams replicating 10,000 small files took a daemon to 435 MiB.
 */
const SEND_BUFFERS = { bufferBytes: 1024 * 1024, maxFree: 24, idleMs: 10_000, minBytes: DIRECT_SEND_BYTES }

export function poolComponents (repo: PoolRepo, libp2p: PoolComponents['libp2p'], pins: PinManager, sealWatch?: SealWatch): PoolComponents {
  return {
    libp2p,
    pins,
    blockstore: repo.blockstore,
    leases: repo.leases,
    db: repo.db,
    privateKey: repo.privateKey,
    peerId: repo.peerId,
    // where the store writes directly, blocks are received into its aligned slots: one copy fewer
    buffers: repo.blockstore.writeBuffers ?? createBufferPool(RECEIVE_BUFFERS),
    // where the store reads directly, blocks sent are read into its aligned slots, past the page cache
    ...(sealWatch == null ? {} : { sealWatch, sendBuffers: repo.blockstore.readBuffers ?? createBufferPool(SEND_BUFFERS) })
  }
}

export interface PoolInit {
  members: string[]
  sharePerMember: number
  /** The storage quota (`storage.max`). */
  maxBytes: number
  healthIntervalMs?: number
  gracePeriodMs?: number
  requestsPerMinute?: number
  cidsPerMinute?: number
  concurrency?: number
  requestTimeoutMs?: number
  maxInboundStreams?: number
  /** The order replicas are offered to members; rendezvous hashing by default (placement.ts). */
  placement?: Placement
}

export interface Pool {
  readonly replication: ReplicationManager
  isMember(peer: PeerId | string): boolean
  /** Bytes this node holds for a member. */
  usage(peer: string): Promise<number>
  start(): Promise<void>
  stop(): Promise<void>
}

/**
 * The pool side of a node: serves `/pinbox/pin/1.0.0` and `/pinbox/dag/1.0.0` to members and
 * replicates this node's pins onto them.
 */
export function createPool (components: PoolComponents, init: PoolInit): Pool {
  const members = new Set(init.members)
  const isMember = (peer: PeerId | string): boolean => members.has(peer.toString())
  const dagServer = createDagServer({
    libp2p: components.libp2p,
    blockstore: components.blockstore,
    isMember,
    ...(components.sealWatch == null || components.sendBuffers == null ? {} : { sealWatch: components.sealWatch, buffers: components.sendBuffers })
  }, {
    ...(init.maxInboundStreams == null ? {} : { maxInboundStreams: init.maxInboundStreams })
  })
  const pinServer = createPinServer({ ...components, isMember }, {
    sharePerMember: init.sharePerMember,
    maxBytes: init.maxBytes,
    ...(init.requestsPerMinute == null ? {} : { requestsPerMinute: init.requestsPerMinute }),
    ...(init.cidsPerMinute == null ? {} : { cidsPerMinute: init.cidsPerMinute }),
    ...(init.concurrency == null ? {} : { concurrency: init.concurrency }),
    ...(init.requestTimeoutMs == null ? {} : { fetchTimeoutMs: init.requestTimeoutMs }),
    ...(init.maxInboundStreams == null ? {} : { maxInboundStreams: init.maxInboundStreams })
  })
  const replication = createReplicationManager({ ...components, members: () => [...members] }, {
    ...(init.healthIntervalMs == null ? {} : { healthIntervalMs: init.healthIntervalMs }),
    ...(init.placement == null ? {} : { placement: init.placement }),
    ...(init.gracePeriodMs == null ? {} : { gracePeriodMs: init.gracePeriodMs }),
    ...(init.requestTimeoutMs == null ? {} : { requestTimeoutMs: init.requestTimeoutMs })
  })
  let started = false

  return {
    replication,
    isMember,
    usage: async (peer) => await pinServer.usage(peer),
    async start () {
      if (started) return
      await dagServer.start()
      await pinServer.start()
      await replication.start()
      started = true
    },
    async stop () {
      if (!started) return
      started = false
      await replication.stop()
      await pinServer.stop()
      await dagServer.stop()
    }
  }
}

/** Limits a pool relay grants its members: long enough and large enough to carry a replica. */
export const POOL_RELAY_LIMITS = { durationMs: 60 * 60_000, dataBytes: 1n << 40n }

/**
 * Turns a node's relay server into a pool relay: circuit relay v2 in libp2p 3 applies one limit
 * to every reservation (no per-peer limit hook), so the raised limits are global and a
 * connection gater keeps everyone but members from reserving a slot or being relayed.
 */
export function withPoolRelay (options: Libp2pOptions<any>, members: string[]): Libp2pOptions<any> {
  const set = new Set(members)
  const services = { ...(options.services ?? {}) }
  if (services.relay == null || set.size === 0) return options
  services.relay = circuitRelayServer({
    reservations: {
      maxReservations: Math.max(16, set.size * 2),
      applyDefaultLimit: true,
      defaultDurationLimit: POOL_RELAY_LIMITS.durationMs,
      defaultDataLimit: POOL_RELAY_LIMITS.dataBytes
    }
  })
  const gater = options.connectionGater ?? {}
  return {
    ...options,
    services,
    connectionGater: {
      ...gater,
      denyInboundRelayReservation: async (peer: PeerId) => !set.has(peer.toString()) || (await gater.denyInboundRelayReservation?.(peer)) === true,
      denyOutboundRelayedConnection: async (source: PeerId, target: PeerId) =>
        !set.has(source.toString()) || !set.has(target.toString()) || (await gater.denyOutboundRelayedConnection?.(source, target)) === true
    }
  }
}
