import type { ImportOptions } from '../content/types.ts'
import type { Provider } from '../net/provider.ts'
import type { Swarm } from '../net/swarm.ts'
import type { PinManager } from '../pinning/types.ts'
import type { ReplicationManager } from '../pinning/replication-types.ts'
import type { PsaDb } from './pinning-service/service.ts'
import type { RewardsService } from '../rewards/service.ts'
import type { BlockLeases, RepoBlockstore } from '../store/types.ts'
import type { GcResult } from '../store/gc.ts'
import type { AbortOptions } from 'abort-error'
import type { FastifyBaseLogger } from 'fastify'

export interface ApiGc {
  run(options?: AbortOptions): Promise<GcResult>
}

export interface ApiNetwork {
  peerId(): string
  /** Base64 of the protobuf-encoded public key, as Kubo's `id` shows it. */
  publicKey(): string
  addresses(): string[]
  peers(): Array<{ peer: string, addr: string, direction?: string }>
  protocols?(): string[]
  agentVersion: string
}

/** What the RPC API needs from the node; the daemon composer builds it from the repo and libp2p. */
export interface ApiComponents {
  blockstore: RepoBlockstore
  leases: BlockLeases
  pins: PinManager
  gc: ApiGc
  autoGc?: { poke(): void }
  repo: { path: string, maxBytes: number, version?: number }
  /** Options of the configured import profile; request flags override them per call. */
  importDefaults: ImportOptions
  network: ApiNetwork
  /** libp2p connections (swarm routes); absent in an offline API. */
  swarm?: Swarm
  /** The provide schedule (provide/stat). */
  provider?: Pick<Provider, 'stat'>
  /** Pool replication behind the Pinning Service API; a lone box pins locally only when absent. */
  replication?: ReplicationManager
  /** LevelDB space of the Pinning Service API's requests (`psa` sublevel); `/pins` is off without it. */
  psaDb?: PsaDb
  /** The rewards service, once the chain is configured (a dev chain comes up after the API). */
  rewards?: () => RewardsService | undefined
  /** Best-effort dial of a multiaddr a pin request names as an origin of its content. */
  dialOrigin?(addr: string, options?: AbortOptions): Promise<void>
}

export interface ApiInit {
  token: string
  /** Origins allowed to call the API from a browser; CORS is off when absent or empty. */
  corsOrigins?: string[]
  /** Cap on one upload (add, block/put, dag/import), in bytes. */
  maxBodyBytes?: number
  logger?: FastifyBaseLogger
}
