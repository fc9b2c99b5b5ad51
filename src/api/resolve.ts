import { resolvePath } from '../content/export.ts'
import { parseIpfsPath } from './args.ts'
import type { ExportBlockstore } from '../content/export.ts'
import type { AbortOptions } from 'abort-error'
import type { CID } from 'multiformats/cid'

/** Turns a Kubo path argument into the CID it names, walking UnixFS links below the root. */
export async function resolveArg (blockstore: ExportBlockstore, value: string, options: AbortOptions = {}): Promise<CID> {
  const { cid, rest, path } = parseIpfsPath(value)
  if (rest === '') return cid
  const entry = await resolvePath(blockstore, path, options.signal == null ? {} : { signal: options.signal })
  return entry.cid
}

/** Each path argument resolved in turn; the first that does not resolve fails the call. */
export async function resolveArgs (blockstore: ExportBlockstore, values: string[], options: AbortOptions = {}): Promise<CID[]> {
  const cids: CID[] = []
  for (const value of values) cids.push(await resolveArg(blockstore, value, options))
  return cids
}
