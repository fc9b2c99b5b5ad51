import type { AbortOptions } from 'abort-error'
import type { CID } from 'multiformats/cid'

export type PinType = 'recursive' | 'direct'
export type PinListType = PinType | 'indirect' | 'all'

export interface Pin {
  cid: CID
  type: PinType
  name?: string
  metadata?: Record<string, string>
  /** Milliseconds since the epoch. */
  created: number
  /** Distinct blocks and bytes the pin holds (1 and the block size for a direct pin). */
  blocks: number
  bytes: number
}

export interface PinAddOptions extends AbortOptions {
  recursive?: boolean
  name?: string
  metadata?: Record<string, string>
  /** After each block is stored: distinct blocks and bytes so far. */
  onProgress?(blocksSeen: number, bytesSeen: number): void
  /**
   * Blocks the caller has just written and hashed (an add): raw blocks listed here are taken with
   * their size instead of being read back. The DAG is still walked through its linking nodes, so
   * the pin holds exactly the blocks its root reaches; a raw block not listed is read as usual.
   */
  knownBlocks?: Iterable<KnownBlock>
}

export interface KnownBlock {
  cid: CID
  size: number
}

export interface PinListed {
  cid: CID
  type: PinType | 'indirect'
  name?: string
}

export interface PinVerifyResult {
  cid: CID
  ok: boolean
  /** Blocks that are missing or whose bytes do not hash to their CID. */
  bad: Array<{ cid: CID, error: 'missing' | 'hash-mismatch' | 'undecodable' }>
}

export interface PinManager {
  start(): Promise<void>
  stop(): Promise<void>
  /** Returns only after every block of the DAG and the pin record are durable on disk. */
  add(cid: CID, options?: PinAddOptions): Promise<Pin>
  rm(cid: CID, options?: AbortOptions & { recursive?: boolean }): Promise<Pin>
  ls(options?: AbortOptions & { type?: PinListType, cids?: CID[], name?: string }): AsyncGenerator<PinListed>
  get(cid: CID): Promise<Pin | undefined>
  verify(options?: AbortOptions & { cids?: CID[] }): AsyncGenerator<PinVerifyResult>
  /** Replace the pin on `from` by one on `to` (keeping name and metadata); `unpin: false` keeps both. */
  update(from: CID, to: CID, options?: AbortOptions & { unpin?: boolean }): Promise<Pin>
  /** Every block any pin reaches (GC's mark set). */
  reachable(options?: AbortOptions): AsyncGenerator<CID>
}
