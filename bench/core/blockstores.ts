/**
 * The in-process harness for the blockstore choice: one durable import of a file through
 * `importContent` (default profile) into (a) pinbox's flat-file blockstore + one `sync()`, or
 * (b) stock `blockstore-level`, made durable either by a `sync: true` LevelDB write per block or
 * by one final `sync: true` write (LevelDB's log is one append-only file, so that one fsync
 * also covers every earlier write in it; memtables flushed before it are fsync'd SSTs).
 */
import { createReadStream } from 'node:fs'
import { LevelBlockstore } from 'blockstore-level'
import { Level } from 'level'
import { importContent } from '../../src/content/import.ts'
import { resolveImportOptions } from '../../src/content/profiles.ts'
import { createBlockstore } from '../../src/store/blockstore.ts'
import type { ImportBlockstore } from '../../src/content/import.ts'
import type { CID } from 'multiformats/cid'

export type StoreKind = 'flat' | 'level-sync-each' | 'level-final-sync'

export const STORE_LABELS: Record<StoreKind, string> = {
  flat: 'flat files (src/store/blockstore.ts) + one sync() pass',
  'level-sync-each': 'blockstore-level, every block put with sync: true',
  'level-final-sync': 'blockstore-level, unsynced puts + one final sync: true put'
}

async function importFile (blockstore: ImportBlockstore, file: string): Promise<CID> {
  let root: CID | undefined
  const candidates = [{ content: createReadStream(file, { highWaterMark: 1_048_576 }) }]
  for await (const entry of importContent(blockstore, candidates, resolveImportOptions())) root = entry.cid
  if (root == null) throw new Error('import gave no root')
  return root
}

/** Imports `file` into a fresh store in `dir`; `ms` runs until the import is durable. */
export async function durableImport (kind: StoreKind, file: string, dir: string): Promise<{ ms: number, cid: CID }> {
  if (kind === 'flat') {
    const store = createBlockstore({ path: dir })
    await store.open()
    try {
      const started = performance.now()
      const cid = await importFile(store, file)
      await store.sync()
      return { ms: performance.now() - started, cid }
    } finally {
      await store.close()
    }
  }
  const db = new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' })
  const syncEach = kind === 'level-sync-each'
  // blockstore-level passes no options to db.put; this view adds sync: true to every put.
  const view = syncEach
    ? new Proxy(db, {
      get (target, prop) {
        if (prop === 'put') return async (k: string, v: Uint8Array) => { await target.put(k, v, { sync: true }) }
        const value = Reflect.get(target, prop, target)
        return typeof value === 'function' ? value.bind(target) : value
      }
    })
    : db
  const store = new LevelBlockstore(view as any)
  await store.open()
  try {
    const started = performance.now()
    const cid = await importFile(store, file)
    if (!syncEach) await db.put('/pinbox-bench-barrier', new Uint8Array(1), { sync: true })
    return { ms: performance.now() - started, cid }
  } finally {
    await store.close()
  }
}
