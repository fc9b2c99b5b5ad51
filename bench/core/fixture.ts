/**
 * The GC fixture, written in-process into a real repo while its daemon is stopped: pinned DAGs
 * (a dag-pb root over raw leaves, each pinned recursively through the real pin manager, so the
 * pin records are exactly what the daemon writes) and loose raw blocks that no pin reaches.
 * Blocks go through the repo's own blockstore. Between batches `sync -f` flushes the whole
 * filesystem once, so the blockstore's per-file fsync pass afterwards finds clean files; that
 * is a shortcut for building the fixture only, not a figure that is reported as an add.
 * Progress is kept in a JSON file so an interrupted build resumes at the last whole batch.
 */
import { spawnSync } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { existsSync, statSync } from 'node:fs'
import { open, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { createPinManager } from '../../src/pinning/pin-manager.ts'
import { openRepo } from '../../src/store/repo.ts'
import type { Repo } from '../../src/store/repo.ts'

export interface FixtureState {
  pinnedDags: number
  unpinnedBlocks: number
  pinnedMs: number
  unpinnedMs: number
}

export interface FixtureSpec {
  dags: number
  blocksPerDag: number
  unpinned: number
  blockSize: number
}

const EMPTY: FixtureState = { pinnedDags: 0, unpinnedBlocks: 0, pinnedMs: 0, unpinnedMs: 0 }

async function mapLimit<T> (items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++] as T)
  }))
}

export async function readState (file: string): Promise<FixtureState> {
  try {
    return { ...EMPTY, ...JSON.parse(await readFile(file, 'utf8')) }
  } catch {
    return { ...EMPTY }
  }
}

async function putRaw (repo: Repo, size: number): Promise<CID> {
  const bytes = randomFillSync(new Uint8Array(size))
  const cid = CID.createV1(raw.code, await sha256.digest(bytes))
  await repo.blockstore.put(cid, bytes)
  return cid
}

function flushFs (dir: string): void {
  const r = spawnSync('sync', ['-f', dir])
  if (r.status !== 0) throw new Error(`sync -f ${dir} failed: ${r.stderr?.toString()}`)
}

const BATCH_DAGS = 500
const BATCH_BLOCKS = 25_000

/** Adds pinned DAGs until `spec.dags` exist; returns the updated state. */
export async function buildPinned (repoPath: string, stateFile: string, spec: FixtureSpec, log: (line: string) => void): Promise<FixtureState> {
  const state = await readState(stateFile)
  if (state.pinnedDags >= spec.dags) return state
  const repo = await openRepo(repoPath)
  const pins = createPinManager({ db: repo.db, blockstore: repo.blockstore, leases: repo.leases })
  await pins.start()
  try {
    while (state.pinnedDags < spec.dags) {
      const started = performance.now()
      const n = Math.min(BATCH_DAGS, spec.dags - state.pinnedDags)
      const roots: CID[] = []
      await mapLimit([...Array(n).keys()], 16, async () => {
        const leaves: CID[] = []
        for (let i = 0; i < spec.blocksPerDag - 1; i++) leaves.push(await putRaw(repo, spec.blockSize))
        const node = dagPb.prepare({ Data: randomFillSync(new Uint8Array(32)), Links: leaves.map(Hash => ({ Hash, Tsize: spec.blockSize })) })
        const bytes = dagPb.encode(node)
        const root = CID.createV1(dagPb.code, await sha256.digest(bytes))
        await repo.blockstore.put(root, bytes)
        roots.push(root)
      })
      flushFs(repo.blockstore.path)
      await repo.blockstore.sync()
      await mapLimit(roots, 32, async (root) => { await pins.add(root) })
      state.pinnedDags += n
      state.pinnedMs += performance.now() - started
      await writeFile(stateFile, JSON.stringify(state))
      log(`fixture: ${state.pinnedDags}/${spec.dags} pinned DAGs (${Math.round(state.pinnedMs / 1000)} s so far)`)
    }
  } finally {
    await pins.stop()
    await repo.close()
  }
  return state
}

/** Adds loose raw blocks until `spec.unpinned` exist (a GC run resets the count to 0). */
export async function buildUnpinned (repoPath: string, stateFile: string, spec: FixtureSpec, log: (line: string) => void): Promise<FixtureState> {
  const state = await readState(stateFile)
  if (state.unpinnedBlocks >= spec.unpinned) return state
  const repo = await openRepo(repoPath)
  try {
    while (state.unpinnedBlocks < spec.unpinned) {
      const started = performance.now()
      const n = Math.min(BATCH_BLOCKS, spec.unpinned - state.unpinnedBlocks)
      await mapLimit([...Array(n).keys()], 64, async () => { await putRaw(repo, spec.blockSize) })
      flushFs(repo.blockstore.path)
      await repo.blockstore.sync()
      state.unpinnedBlocks += n
      state.unpinnedMs += performance.now() - started
      await writeFile(stateFile, JSON.stringify(state))
      log(`fixture: ${state.unpinnedBlocks}/${spec.unpinned} unpinned blocks (${Math.round(state.unpinnedMs / 1000)} s so far)`)
    }
  } finally {
    await repo.close()
  }
  return state
}

export async function markUnpinnedGone (stateFile: string): Promise<void> {
  const state = await readState(stateFile)
  await writeFile(stateFile, JSON.stringify({ ...state, unpinnedBlocks: 0, unpinnedMs: 0 }))
}

export function fixtureStateFile (dir: string): string {
  return join(dir, 'gc-fixture.json')
}

/** A file of `bytes` random bytes at `path`, written in 16 MiB pieces; kept when it already has that size. */
export async function randomFile (path: string, bytes: number, log: (line: string) => void): Promise<void> {
  if (existsSync(path) && statSync(path).size === bytes) return
  const MIB = 1024 * 1024
  log(`writing ${bytes / MIB} MiB of random bytes to ${path}`)
  const fh = await open(path, 'w')
  try {
    const buf = new Uint8Array(16 * MIB)
    for (let left = bytes; left > 0; left -= buf.length) {
      const n = Math.min(buf.length, left)
      randomFillSync(buf, 0, n)
      await fh.write(buf, 0, n)
    }
  } finally {
    await fh.close()
  }
}
