import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { Level } from 'level'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { createPinManager } from '../../src/pinning/pin-manager.ts'
import type { PinManagerComponents, PinManagerInit, PinDb } from '../../src/pinning/pin-manager.ts'
import type { PinManager } from '../../src/pinning/types.ts'
import type { BlockLeases, RepoBlockstore } from '../../src/store/types.ts'
import { createBlockstore } from '../../src/store/blockstore.ts'
import { createLeases } from '../../src/store/leases.ts'

export interface Harness {
  dir: string
  db: Level<string, any>
  blockstore: RepoBlockstore
  leases: BlockLeases
  pins: PinManager
  /** Re-open the LevelDB and a fresh pin manager over the same folder. */
  reopen(): Promise<void>
  close(): Promise<void>
}

export interface HarnessOptions {
  /** Wraps the LevelDB the pin manager sees (to observe its writes). */
  wrapDb?(db: PinDb): PinDb
  /** Wraps the blockstore the pin manager sees. */
  wrapBlockstore?(blockstore: PinManagerComponents['blockstore']): PinManagerComponents['blockstore']
}

export async function createHarness (init: PinManagerInit = {}, options: HarnessOptions = {}): Promise<Harness> {
  const { wrapDb } = options
  const dir = await mkdtemp(join(tmpdir(), 'pinbox-pinning-'))
  const blockstore = createBlockstore({ path: join(dir, 'blocks'), maxBytes: 1024 ** 3 })
  await blockstore.open()
  const leases = createLeases()
  const h: Harness = {
    dir,
    db: new Level<string, any>(join(dir, 'datastore')),
    blockstore,
    leases,
    pins: undefined as unknown as PinManager,
    async reopen () {
      await h.pins.stop()
      await h.db.close()
      h.db = new Level<string, any>(join(dir, 'datastore'))
      await startPins()
    },
    async close () {
      await h.pins.stop()
      await h.db.close()
      await blockstore.close()
      await rm(dir, { recursive: true, force: true })
    }
  }
  async function startPins (): Promise<void> {
    await h.db.open()
    h.pins = createPinManager({ db: wrapDb?.(h.db) ?? h.db, blockstore: options.wrapBlockstore?.(blockstore) ?? blockstore, leases }, init)
    await h.pins.start()
  }
  await startPins()
  return h
}

export async function rawBlock (store: Pick<RepoBlockstore, 'put'>, bytes: Uint8Array): Promise<CID> {
  const cid = CID.createV1(raw.code, await sha256.digest(bytes))
  await store.put(cid, bytes)
  return cid
}

export async function pbNode (store: Pick<RepoBlockstore, 'put'>, links: CID[], data?: Uint8Array): Promise<{ cid: CID, bytes: Uint8Array }> {
  const node: dagPb.PBNode = { Links: links.map((Hash, i) => ({ Hash, Name: `l${i}` })) }
  if (data != null) node.Data = data
  const bytes = dagPb.encode(dagPb.prepare(node))
  const cid = CID.createV1(dagPb.code, await sha256.digest(bytes))
  await store.put(cid, bytes)
  return { cid, bytes }
}

export interface Dag {
  root: CID
  /** Every block, root first (the walker's pre-order). */
  blocks: CID[]
  bytes: number
}

/** A dag-pb root over `leaves` raw blocks whose bytes derive from `seed`. */
export async function makeDag (store: Pick<RepoBlockstore, 'put'>, seed: string, leaves: number, leafSize = 100): Promise<Dag> {
  const cids: CID[] = []
  let bytes = 0
  for (let i = 0; i < leaves; i++) {
    const block = new TextEncoder().encode(`${seed}:${i}:`.padEnd(leafSize, '.'))
    cids.push(await rawBlock(store, block))
    bytes += block.byteLength
  }
  const root = await pbNode(store, cids, new TextEncoder().encode(seed))
  return { root: root.cid, blocks: [root.cid, ...cids], bytes: bytes + root.bytes.byteLength }
}

export async function collect<T> (source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of source) out.push(item)
  return out
}

export function keys (cids: Iterable<CID>): string[] {
  return [...cids].map(c => c.toString()).sort()
}
