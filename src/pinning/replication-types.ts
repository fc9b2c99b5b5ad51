import type { AbortOptions } from 'abort-error'
import type { CID } from 'multiformats/cid'

export type ReplicaState = 'queued' | 'pinning' | 'pinned' | 'failed'

export interface ReplicaStatus {
  /** Peer id of the member holding (or asked to hold) the replica; this node's own id for the local copy. */
  peer: string
  state: ReplicaState
  /** Milliseconds since the epoch when the replica entered `state`. */
  since: number
  /** Why it failed, as the peer or the transfer said. */
  reason?: string
  /** Receipt signed by the peer's key once `pinned`, base64. */
  receipt?: string
}

export interface ReplicatedPin {
  cid: CID
  name?: string
  meta?: Record<string, string>
  /** Replicas wanted in total, this node's local copy included. */
  replicas: number
  created: number
  /** The local copy first, then each remote replica. */
  status: ReplicaStatus[]
}

export interface ReplicateOptions extends AbortOptions {
  replicas: number
  name?: string
  meta?: Record<string, string>
}

/**
 * Pins that should live on N members of the pool. The local pin is made first (durably); the
 * remote replicas are then requested over `/pinbox/pin/1.0.0`, tracked, health-checked and
 * replaced when a member stays unreachable past the grace period. State survives restarts.
 */
export interface ReplicationManager {
  start(): Promise<void>
  stop(): Promise<void>
  /** Pins locally (durable) and queues N-1 remote replicas; resolves once the local pin holds. */
  replicate(cid: CID, options: ReplicateOptions): Promise<ReplicatedPin>
  /** Change the wanted replica count, name or meta of an existing replicated pin. */
  update(cid: CID, options: Partial<ReplicateOptions>): Promise<ReplicatedPin>
  status(cid: CID): Promise<ReplicatedPin | undefined>
  list(options?: AbortOptions): AsyncGenerator<ReplicatedPin>
  /** Unpins locally and asks every member holding a replica to release it. */
  remove(cid: CID, options?: AbortOptions): Promise<void>
  /** Resolves when every replica of `cid` is `pinned` or `failed` (tests and `--wait`). */
  settled(cid: CID, options?: AbortOptions): Promise<ReplicatedPin>
  /**
   * Re-hashes the pins' blocks (all pins, or `cids`) and re-fetches each missing or corrupt block
   * from a member holding a replica (any member when the pin is not replicated), then re-checks.
   */
  repair?(options?: AbortOptions & { cids?: CID[] }): AsyncGenerator<RepairResult>
}

export interface RepairResult {
  cid: CID
  /** True when every block is intact after the repair. */
  ok: boolean
  /** Blocks restored from a replica. */
  repaired: number
  /** Blocks still missing or corrupt afterwards. */
  bad: Array<{ cid: CID, error: 'missing' | 'hash-mismatch' | 'undecodable' }>
}
