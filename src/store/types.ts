import type { BufferPool } from './buffer-pool.ts'
import type { Blockstore } from 'interface-blockstore'
import type { AbortOptions } from 'abort-error'
import type { CID } from 'multiformats/cid'

/**
 * The blockstore of a repo. Writes are fast and unsynced; `sync()` makes every block written
 * so far durable in one pass (files and their directories fsync'd), so callers batch the cost
 * per add or per pin, never per block.
 */
export interface RepoBlockstore extends Blockstore {
  /** Durably persist every block put so far (group commit: concurrent callers share one pass). */
  sync(options?: AbortOptions): Promise<void>
  /** Every CID in the store, without reading block bytes. */
  cids(options?: AbortOptions): AsyncGenerator<CID>
  /**
   * `put` of a block only if it is absent, in one step: true when this call wrote it. Stores
   * without it are asked `has` first (one more look at the disk per block).
   */
  putNew?(cid: CID, bytes: Uint8Array, options?: AbortOptions): Promise<boolean>
  /** Byte size of one block, or undefined when absent. */
  size(cid: CID, options?: AbortOptions): Promise<number | undefined>
  /** Totals, kept up to date without walking the disk. */
  stat(): { blocks: number, bytes: number }
  /**
   * One block's bytes read into a buffer from `pool`; the caller releases it when done. Stores
   * without it are read with `get`.
   */
  getPooled?(cid: CID, pool: BufferPool, options?: AbortOptions): Promise<Uint8Array>
  /**
   * Buffers to fill with a block and hand to `put`/`putNew` as its only part: the store writes
   * from them without copying. Given back with `release` once that call has returned. Absent where
   * the store would copy anyway.
   */
  readonly writeBuffers?: BufferPool
  /**
   * Buffers for `getPooled` reads of bytes that only pass through (sent to a peer): the store may
   * read into them bypassing its cache. Given back with `release` once the bytes are used.
   */
  readonly readBuffers?: BufferPool
  open(): Promise<void>
  close(): Promise<void>
}

/**
 * Leases protect blocks that an operation in progress (an add, a pin, an import) has written
 * or relies on, until the pin record that references them is durable. GC never removes a
 * leased block, and a block leased while a GC runs is kept for the rest of that run.
 */
export interface Lease {
  add(cid: CID): void
  close(): void
}

export interface BlockLeases {
  open(): Lease
  /** Leases open right now: a writer (add, pin, import, replica fetch) is at work. */
  readonly active: number
  /** True when any open lease, or the current GC run's protected set, holds the CID. */
  isProtected(cid: CID): boolean
  /** Called by GC: from now until `endGc()`, every leased CID is remembered as protected. */
  beginGc(): void
  endGc(): void
}
