import { access, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { withBitswap } from '@helia/bitswap'
import { createHeliaLight } from 'helia'
import { withLibp2pLight } from '@helia/libp2p'
import { publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { buildServer } from './api/server.ts'
import { resolveImportOptions } from './content/profiles.ts'
import { libp2pOptions } from './net/libp2p.ts'
import { createPinManager } from './pinning/pin-manager.ts'
import { createAutoGc, createGc } from './store/gc.ts'
import { initRepo, openRepo } from './store/repo.ts'
import { parseBytes, parseDuration } from './store/config.ts'
import { PinboxError } from './errors.ts'
import type { Repo } from './store/repo.ts'
import type { AbortOptions } from 'abort-error'
import type { Helia } from '@helia/interface'
import type { Libp2p } from '@libp2p/interface'
import type { FastifyInstance } from 'fastify'

export const AGENT_VERSION = 'pinbox/0.1.0'
/** File in the repo holding the running daemon's API base URL. */
export const API_FILE = 'api'

export interface NodeInit {
  repoPath: string
  /** Create the repo with default settings when the folder holds none (what `npm start` wants). */
  initIfMissing?: boolean
}

export interface NodeInfo {
  peerId: string
  addresses: string[]
  apiUrl: string
  repoPath: string
}

export interface PinboxNode {
  readonly status: 'stopped' | 'starting' | 'started' | 'stopping'
  start(): Promise<void>
  stop(): Promise<void>
  info(): NodeInfo
}

export class NodeStartError extends PinboxError {
  constructor (message: string, options?: ErrorOptions) {
    super('ERR_NODE_START', message, options)
  }
}

interface Started {
  repo: Repo
  helia?: Helia & { libp2p: Libp2p }
  pins?: ReturnType<typeof createPinManager>
  autoGc?: ReturnType<typeof createAutoGc>
  api?: FastifyInstance
  apiUrl?: string
}

async function hasRepo (path: string): Promise<boolean> {
  try {
    await access(path)
    return true
  } catch {
    return false
  }
}

/**
 * Composes the services of one pinbox daemon on one repo: the store, the Helia + libp2p host,
 * the pin manager, GC and the RPC API. Start-up rolls back what it had started when a later
 * service fails, so a failed start never leaves the repo locked.
 */
export function createNode (init: NodeInit): PinboxNode {
  let status: PinboxNode['status'] = 'stopped'
  let parts: Started | undefined

  async function teardown (p: Partial<Started>): Promise<void> {
    // reverse order of start; each step runs even when an earlier one failed
    const steps: Array<() => Promise<unknown> | undefined> = [
      () => p.api == null ? undefined : rm(join(p.repo?.path ?? '', API_FILE), { force: true }),
      () => p.api?.close(),
      () => p.autoGc?.stop(),
      () => p.pins?.stop(),
      () => p.helia?.stop(),
      () => p.repo?.close()
    ]
    let first: unknown
    for (const step of steps) {
      try {
        await step()
      } catch (err) {
        first ??= err
      }
    }
    if (first != null) {
      throw first
    }
  }

  return {
    get status () {
      return status
    },

    async start () {
      if (status !== 'stopped') {
        return
      }
      status = 'starting'
      const p: Partial<Started> = {}
      try {
        if (init.initIfMissing === true && !(await hasRepo(init.repoPath))) {
          await initRepo(init.repoPath)
        }
        const repo = p.repo = await openRepo(init.repoPath)
        const cfg = repo.config
        const maxBytes = parseBytes(cfg.storage.max)

        const pins = p.pins = createPinManager({ db: repo.db, blockstore: repo.blockstore, leases: repo.leases })
        await pins.start()
        const gc = createGc({ blockstore: repo.blockstore, leases: repo.leases, reachable: (options?: AbortOptions) => pins.reachable(options) })
        const autoGc = p.autoGc = createAutoGc({ gc, blockstore: repo.blockstore }, {
          maxBytes,
          watermarkPercent: cfg.storage.gcWatermark,
          intervalMs: parseDuration(cfg.storage.gcInterval)
        })
        await autoGc.start()

        const helia = withBitswap(withLibp2pLight(createHeliaLight({
          blockstore: repo.blockstore,
          datastore: repo.datastore,
          // bitswap only: the default brokers and routers would reach public HTTP services
          blockBrokers: [],
          routers: []
        }), libp2pOptions({ privateKey: repo.privateKey, datastore: repo.datastore }, cfg.swarm, AGENT_VERSION)))
        p.helia = helia as any
        await helia.start()
        const libp2p = helia.libp2p

        const api = p.api = buildServer({
          blockstore: repo.blockstore,
          leases: repo.leases,
          pins,
          gc,
          autoGc,
          repo: { path: repo.path, maxBytes },
          importDefaults: resolveImportOptions(cfg.import.profile),
          network: {
            agentVersion: AGENT_VERSION,
            peerId: () => libp2p.peerId.toString(),
            publicKey: () => Buffer.from(publicKeyToProtobuf(repo.privateKey.publicKey)).toString('base64'),
            addresses: () => libp2p.getMultiaddrs().map(String),
            peers: () => libp2p.getConnections().map((c) => ({
              peer: c.remotePeer.toString(),
              addr: c.remoteAddr.toString(),
              direction: c.direction
            })),
            protocols: () => libp2p.getProtocols()
          }
        }, {
          token: repo.apiToken,
          corsOrigins: cfg.api.corsOrigins,
          maxBodyBytes: cfg.api.maxBodyBytes
        })
        const address = await api.listen({ host: cfg.api.host, port: cfg.api.port })
        p.apiUrl = `${address.replace('[::1]', '127.0.0.1')}/api/v0`
        // like Kubo's $IPFS_PATH/api: tells the CLI where this daemon listens, even on port 0
        await writeFile(join(repo.path, API_FILE), address + '\n')
        parts = p as Started
        status = 'started'
      } catch (err) {
        // the start-up error is the one worth reporting; teardown errors would only hide it
        await teardown(p).catch(() => {})
        status = 'stopped'
        throw err
      }
    },

    async stop () {
      if (status !== 'started' || parts == null) {
        return
      }
      status = 'stopping'
      const p = parts
      parts = undefined
      try {
        await teardown(p)
      } finally {
        status = 'stopped'
      }
    },

    info () {
      if (parts == null) {
        throw new NodeStartError('the node is not started')
      }
      return {
        peerId: parts.repo.peerId.toString(),
        addresses: parts.helia?.libp2p.getMultiaddrs().map(String) ?? [],
        apiUrl: parts.apiUrl ?? '',
        repoPath: parts.repo.path
      }
    }
  }
}
