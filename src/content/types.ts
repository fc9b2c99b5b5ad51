import type { AbortOptions } from 'abort-error'
import type { CID } from 'multiformats/cid'

export interface ImportOptions extends AbortOptions {
  cidVersion: 0 | 1
  rawLeaves: boolean
  /** Fixed-size chunker, bytes per leaf. */
  chunkSize: number
  maxChildrenPerNode: number
  /** Directories with more links than Kubo's threshold (256 KiB of link bytes) become HAMT shards. */
  shardSplitThresholdBytes: number
  /** How the threshold is measured: Kubo's classic link-bytes estimate or the encoded block size (IPIP-499). Default 'links-bytes'. */
  shardSplitStrategy?: 'links-bytes' | 'block-bytes'
  wrapWithDirectory: boolean
  /** Compute CIDs without writing a block. */
  onlyHash: boolean
  /**
   * Files read in parallel (the importer's default is 50, pulled in batches). Sources that can
   * only produce the next file after the previous one was read, like a multipart upload, need 1.
   */
  fileImportConcurrency?: number
  /** Total bytes read from the sources so far. */
  onProgress?(bytesRead: number): void
}

export interface ImportCandidate {
  /** Path inside the import; '' or undefined for a lone file. */
  path?: string
  /** Absent for a directory (and a symlink). */
  content?: AsyncIterable<Uint8Array>
  /** Makes the entry a UnixFS symlink pointing here, as Kubo adds symlinks found on disk. */
  symlinkTarget?: string
  mode?: number
  mtime?: { secs: bigint, nsecs?: number }
}

export interface ImportedEntry {
  path: string
  cid: CID
  /** Cumulative DAG size in bytes (Kubo's `Size`). */
  size: bigint
}

export type EntryType = 'file' | 'directory' | 'raw' | 'object' | 'identity' | 'symlink'

export interface LsEntry {
  name: string
  path: string
  cid: CID
  /** File content size for files; 0 for directories. */
  size: bigint
  type: EntryType
}

export interface GetEntry {
  /** Path relative to the requested root, the root itself named by its last path segment or CID. */
  path: string
  type: EntryType
  mode?: number
  mtime?: Date
  /** File bytes; absent for directories. */
  content?: () => AsyncGenerator<Uint8Array>
  /** Symlink target. */
  target?: string
  size: bigint
}

export interface CarImportResult {
  roots: CID[]
  blocks: number
  bytes: number
}

export interface DagBlock {
  cid: CID
  bytes: Uint8Array
}
