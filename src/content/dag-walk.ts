import { blockLinks, IDENTITY_CODE, readBlock } from './blocks.ts'
import type { DagBlock } from './types.ts'
import type { Blockstore } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'

export interface WalkProgress {
  blocks: number
  bytes: number
}

export interface WalkDagOptions {
  signal?: AbortSignal
  onProgress?(progress: WalkProgress): void
  /** Blocks fetched ahead of the walk, so a slow store's latency overlaps. Default 8. */
  readAhead?: number
}

const DEFAULT_READ_AHEAD = 8

/**
 * Every block reachable from `root`, depth-first pre-order, links in encoding order, each
 * distinct CID once at its first visit. Identity CIDs yield nothing but their links are
 * followed. This order is the CAR export order and the storage-commitment order: changing it
 * changes commitments already on chain.
 */
export function walkDag (blockstore: Pick<Blockstore, 'get'>, root: CID, options: WalkDagOptions = {}): AsyncGenerator<DagBlock> {
  return walkDags(blockstore, [root], options)
}

/** `walkDag` over several roots in turn, a block shared between roots emitted once. */
export async function * walkDags (blockstore: Pick<Blockstore, 'get'>, roots: CID[], options: WalkDagOptions = {}): AsyncGenerator<DagBlock> {
  const { signal } = options
  const readAhead = Math.max(0, options.readAhead ?? DEFAULT_READ_AHEAD)
  const seen = new Set<string>()
  const stack: CID[] = [...roots].reverse()
  const pending = new Map<string, Promise<Uint8Array>>()
  const progress: WalkProgress = { blocks: 0, bytes: 0 }

  const fetch = (cid: CID): Promise<Uint8Array> => {
    const key = cid.toString()
    const started = pending.get(key)
    if (started != null) {
      pending.delete(key)
      return started
    }
    return readBlock(blockstore, cid, { signal })
  }

  // Start reads for the next few blocks the walk will visit (the top of the stack).
  const prefetch = (): void => {
    for (let i = stack.length - 1, n = 0; i >= 0 && n < readAhead; i--) {
      const cid = stack[i]
      if (cid == null || cid.multihash.code === IDENTITY_CODE) {
        continue
      }
      const key = cid.toString()
      if (seen.has(key)) {
        continue
      }
      n++
      if (!pending.has(key)) {
        const p = readBlock(blockstore, cid, { signal })
        // the error surfaces when the walk reaches this block; never as an unhandled rejection
        p.catch(() => {})
        pending.set(key, p)
      }
    }
  }

  try {
    while (stack.length > 0) {
      signal?.throwIfAborted()
      const cid = stack.pop() as CID
      const key = cid.toString()
      if (seen.has(key)) {
        pending.delete(key)
        continue
      }
      seen.add(key)
      const bytes = await fetch(cid)
      const links = blockLinks(cid, bytes)
      for (let i = links.length - 1; i >= 0; i--) {
        stack.push(links[i] as CID)
      }
      if (readAhead > 0) {
        prefetch()
      }
      if (cid.multihash.code !== IDENTITY_CODE) {
        progress.blocks++
        progress.bytes += bytes.byteLength
        options.onProgress?.({ ...progress })
        yield { cid, bytes }
      }
    }
  } finally {
    pending.clear()
  }
}
