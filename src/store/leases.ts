import { multihashKey } from './blockstore.ts'
import { LeaseClosedError } from './errors.ts'
import type { BlockLeases, Lease } from './types.ts'
import type { CID } from 'multiformats/cid'

/**
 * Leases keyed by multihash (CIDv0 and v1 of the same bytes are one block). While a GC runs,
 * every CID leased before or during the run stays protected until `endGc()`, even if its lease
 * closes meanwhile: the lease closing means a pin now references the block, but the GC's mark
 * phase may have read the pins before that pin existed.
 */
export function createLeases (): BlockLeases {
  const counts = new Map<string, number>()
  let gcProtected: Set<string> | undefined
  let active = 0

  return {
    get active () {
      return active
    },
    open (): Lease {
      const keys = new Set<string>()
      let closed = false
      active++
      return {
        add (cid: CID): void {
          if (closed) throw new LeaseClosedError()
          const key = multihashKey(cid)
          gcProtected?.add(key)
          if (keys.has(key)) return
          keys.add(key)
          counts.set(key, (counts.get(key) ?? 0) + 1)
        },
        close (): void {
          if (closed) return
          closed = true
          active--
          for (const key of keys) {
            const n = (counts.get(key) ?? 1) - 1
            if (n <= 0) counts.delete(key)
            else counts.set(key, n)
          }
          keys.clear()
        }
      }
    },
    isProtected (cid: CID): boolean {
      const key = multihashKey(cid)
      return counts.has(key) || (gcProtected?.has(key) ?? false)
    },
    beginGc (): void {
      gcProtected = new Set(counts.keys())
    },
    endGc (): void {
      gcProtected = undefined
    }
  }
}
