import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { createLibp2p } from 'libp2p'
import { noiseCrypto } from '../../../src/net/noise-crypto.ts'
import { createPinManager } from '../../../src/pinning/pin-manager.ts'
import { createPool, poolComponents } from '../../../src/pinning/pool/index.ts'
import { initRepo, openRepo } from '../../../src/store/repo.ts'
import type { Pool, PoolInit } from '../../../src/pinning/pool/index.ts'
import type { PinManager } from '../../../src/pinning/types.ts'
import type { Repo } from '../../../src/store/repo.ts'
import type { SealWatch } from '../../../src/net/seal-watch.ts'
import type { Libp2p } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

/** A pool member without the rest of a daemon: a real repo, pin manager and libp2p on loopback. */
export interface Peer {
  id: string
  repo: Repo
  pins: PinManager
  libp2p: Libp2p
  pool?: Pool
  startPool(init: Omit<PoolInit, 'maxBytes'> & { maxBytes?: number }): Promise<Pool>
  stop(): Promise<void>
}

export async function tempDir (prefix = 'pinbox-pool-'): Promise<string> {
  return await mkdtemp(join(tmpdir(), prefix))
}

export interface PeerOptions {
  maxBytes?: number
  /** Wired as the daemon wires it: noise reports what it seals, the pool sends from reused buffers. */
  sealWatch?: SealWatch
}

export async function createPeer (dir: string, options: PeerOptions = {}): Promise<Peer> {
  await initRepo(dir)
  const repo = await openRepo(dir, { maxBytes: options.maxBytes ?? 1024 ** 3 })
  const pins = createPinManager({ db: repo.db, blockstore: repo.blockstore, leases: repo.leases })
  const libp2p = await createLibp2p({
    privateKey: repo.privateKey,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [options.sealWatch == null ? noise() : noise({ crypto: noiseCrypto({ onSeal: options.sealWatch.sealed }) })],
    streamMuxers: [yamux()]
  })
  const peer: Peer = {
    id: repo.peerId.toString(),
    repo,
    pins,
    libp2p: libp2p as unknown as Libp2p,
    async startPool (init) {
      const pool = createPool(poolComponents(repo, libp2p, pins, options.sealWatch), { maxBytes: options.maxBytes ?? 1024 ** 3, ...init })
      await pool.start()
      peer.pool = pool
      return pool
    },
    async stop () {
      await peer.pool?.stop()
      await pins.stop()
      await libp2p.stop()
      await repo.close()
    }
  }
  return peer
}

/** A peer in a new temp folder, both recorded for `cleanup(peers, dirs)`. */
export async function trackedPeer (peers: Peer[], dirs: string[], options: PeerOptions = {}): Promise<Peer> {
  const dir = await tempDir()
  dirs.push(dir)
  const peer = await createPeer(dir, options)
  peers.push(peer)
  return peer
}

export async function connect (a: Peer, b: Peer): Promise<void> {
  await a.libp2p.dial(b.libp2p.getMultiaddrs()[0] as any)
}

/** Imports `size` random bytes as a UnixFS file of 64 KiB raw leaves; returns the root. */
export async function addFile (peer: Pick<Peer, 'repo'>, size: number, chunkSize = 64 * 1024): Promise<CID> {
  let root: CID | undefined
  for await (const entry of importer([{ content: randomBytes(size) }], peer.repo.blockstore, {
    cidVersion: 1,
    rawLeaves: true,
    chunker: fixedSize({ chunkSize })
  })) {
    root = entry.cid
  }
  await peer.repo.blockstore.sync()
  return root as CID
}

export async function cleanup (peers: Peer[], dirs: string[]): Promise<void> {
  await Promise.allSettled(peers.map(async p => { await p.stop() }))
  await Promise.allSettled(dirs.map(async d => { await rm(d, { recursive: true, force: true }) }))
}
