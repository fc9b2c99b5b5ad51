import { BlockFetchFailedError } from './errors.ts'
import type { AbortOptions } from 'abort-error'
import type { Blockstore } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'

/**
 * The pin manager's view of Helia's networked blockstore. Helia asks bitswap (which finds
 * providers through the DHTs), re-hashes every block before it is stored or returned, and
 * writes it into the repo's store; this adapter only turns its failures into one typed error.
 * An abort (timeout, client gone, shutdown) stays an abort, so callers can tell the two apart.
 */
export function networkBlockstore (source: () => Pick<Blockstore, 'get'>): Pick<Blockstore, 'get'> {
  return {
    get (cid: CID, options?: AbortOptions) {
      return (async function * () {
        try {
          yield * source().get(cid, options)
        } catch (err) {
          if (options?.signal?.aborted === true) throw options.signal.reason ?? err
          const e = err as { name?: string, code?: string }
          if (e.name === 'LoadBlockFailedError') {
            throw new BlockFetchFailedError(`could not fetch a verified copy of block ${cid.toString()} from any peer`, { cause: err })
          }
          throw err
        }
      })()
    }
  }
}
