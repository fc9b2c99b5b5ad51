import { InvalidChunkerError, UnknownProfileError } from './errors.ts'
import type { ImportOptions } from './types.ts'

export type ImportProfileName = 'unixfs-v1-2025' | 'kubo-v0'

export const DEFAULT_PROFILE: ImportProfileName = 'unixfs-v1-2025'

/** Kubo refuses chunks over 1 MiB (`chunk.ChunkSizeLimit`); bitswap peers would refuse the blocks. */
export const MAX_CHUNK_SIZE = 1_048_576

/** Kubo's HAMTShardingSize: directories whose links would pass 256 KiB become HAMT shards. */
const SHARD_THRESHOLD = 262_144

export const PROFILES: Readonly<Record<ImportProfileName, Readonly<ImportOptions>>> = Object.freeze({
  'unixfs-v1-2025': Object.freeze({
    cidVersion: 1,
    rawLeaves: true,
    chunkSize: 1_048_576,
    maxChildrenPerNode: 1024,
    shardSplitThresholdBytes: SHARD_THRESHOLD,
    // IPIP-499: the 2025 profile measures the encoded directory block, not the link-bytes estimate
    shardSplitStrategy: 'block-bytes',
    wrapWithDirectory: false,
    onlyHash: false
  }),
  'kubo-v0': Object.freeze({
    cidVersion: 0,
    rawLeaves: false,
    chunkSize: 262_144,
    maxChildrenPerNode: 174,
    shardSplitThresholdBytes: SHARD_THRESHOLD,
    shardSplitStrategy: 'links-bytes',
    wrapWithDirectory: false,
    onlyHash: false
  })
})

/** Flags as a user gives them to `pinbox add` or `/api/v0/add`; absent means "profile default". */
export interface ImportOverrides {
  cidVersion?: 0 | 1
  /** Kubo chunker string, e.g. `size-262144`. */
  chunker?: string
  rawLeaves?: boolean
  wrapWithDirectory?: boolean
  onlyHash?: boolean
  maxChildrenPerNode?: number
}

export function isProfileName (name: string): name is ImportProfileName {
  return Object.hasOwn(PROFILES, name)
}

/** Parses Kubo's fixed-size chunker syntax; rabin and buzhash are not offered. */
export function parseChunker (chunker: string): number {
  const match = /^size-(\d{1,8})$/.exec(chunker.trim())
  const size = match?.[1] == null ? NaN : Number(match[1])
  if (!Number.isSafeInteger(size) || size < 1 || size > MAX_CHUNK_SIZE) {
    throw new InvalidChunkerError(chunker)
  }
  return size
}

export function resolveImportOptions (profile: string = DEFAULT_PROFILE, overrides: ImportOverrides = {}): ImportOptions {
  if (!isProfileName(profile)) {
    throw new UnknownProfileError(profile)
  }
  const base = PROFILES[profile]
  const cidVersion = overrides.cidVersion ?? base.cidVersion
  // Kubo: asking for CIDv1 turns raw leaves on unless the user said otherwise
  const rawLeaves = overrides.rawLeaves ?? (overrides.cidVersion === 1 ? true : base.rawLeaves)
  return {
    ...base,
    cidVersion,
    rawLeaves,
    chunkSize: overrides.chunker == null ? base.chunkSize : parseChunker(overrides.chunker),
    maxChildrenPerNode: overrides.maxChildrenPerNode ?? base.maxChildrenPerNode,
    wrapWithDirectory: overrides.wrapWithDirectory ?? base.wrapWithDirectory,
    onlyHash: overrides.onlyHash ?? base.onlyHash
  }
}
