import { access, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { createLibp2p } from 'libp2p'
import { buildServer } from './api/server.ts'
import { resolveImportOptions } from './content/profiles.ts'
import { libp2pOptions, networkConfig } from './net/libp2p.ts'
import { createProvider, dhtRouter } from './net/provider.ts'
import { createSwarm } from './net/swarm.ts'
import { createSealWatch } from './net/seal-watch.ts'
import { createBlockExchange } from './net/fetch.ts'
import { NetworkNotStartedError } from './net/errors.ts'
import { createPinManager } from './pinning/pin-manager.ts'
import { localReplication } from './pinning/local-replication.ts'
import { multiaddr } from '@multiformats/multiaddr'
import { createAutoGc, createGc } from './store/gc.ts'
import { REPO_FILES, initRepo, loadConfig, openRepo, saveConfig } from './store/repo.ts'
import { createNodeRewards, stderrLogger } from './rewards/node-rewards.ts'
import type { NodeRewards } from './rewards/node-rewards.ts'
import { parseBytes, parseDuration } from './store/config.ts'
import { PinboxError } from './errors.ts'
import type { Repo } from './store/repo.ts'
import type { Pool } from './pinning/pool/index.ts'
import type { PinboxServices } from './net/libp2p.ts'
import type { Provider, ProvideRouter } from './net/provider.ts'
import type { BlockExchange } from './net/fetch.ts'
import type { AbortOptions } from 'abort-error'
import type { Libp2p } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import type { FastifyInstance } from 'fastify'

export const AGENT_VERSION = 'pinbox/0.1.0'
/** File in the repo holding the running daemon's API base URL. */
export const API_FILE = 'api'

export interface NodeInit {
  repoPath: string
  /** Create the repo with default settings when the folder holds none (what `npm start` wants). */
  initIfMissing?: boolean
  /** Told the bytes of every large encrypted frame the node sends or receives (the daemon's GC pacer). */
  onTraffic?(bytes: number): void
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
  /** The running libp2p host (for tests and in-process tools); throws when not started. */
  libp2p(): Libp2p<PinboxServices>
}

export class NodeStartError extends PinboxError {
  constructor (message: string, options?: ErrorOptions) {
    super('ERR_NODE_START', message, options)
  }
}

interface Started {
  repo: Repo
  libp2p?: Libp2p<PinboxServices>
  exchange?: BlockExchange
  pins?: ReturnType<typeof createPinManager>
  pool?: Pool
  provider?: Provider
  autoGc?: ReturnType<typeof createAutoGc>
  rewards?: NodeRewards
  api?: FastifyInstance
  apiUrl?: string
}

/** The addresses the transports are bound to (a `/tcp/0` listen address with its real port). */
function listenAddrs (libp2p: Libp2p, configured: string[]): string[] {
  // libp2p's public API shows only the announced addresses; the transport manager knows the bound ones
  const tm = (libp2p as unknown as { components?: { transportManager?: { getAddrs(): Array<{ toString(): string }> } } }).components?.transportManager
  return tm?.getAddrs().map(String) ?? configured
}

/** A repo exists once its version file does: an empty folder (a fresh Docker volume) is not one. */
async function hasRepo (path: string): Promise<boolean> {
  try {
    await access(join(path, REPO_FILES.version))
    return true
  } catch {
    return false
  }
}

/**
 * Composes the services of one pinbox daemon on one repo: the store, the libp2p host with bitswap,
 * the pin manager, GC and the RPC API. Start-up rolls back what it had started when a later
 * service fails, so a failed start never leaves the repo locked.
 */
export function createNode (init: NodeInit): PinboxNode {
  let status: PinboxNode['status'] = 'stopped'
  let parts: Started | undefined

  async function teardown (p: Partial<Started>): Promise<void> {
    // reverse order of start; each step runs even when an earlier one failed
    const steps: Array<() => unknown> = [
      () => p.api == null ? undefined : rm(join(p.repo?.path ?? '', API_FILE), { force: true }),
      () => p.api?.close(),
      () => p.rewards?.stop(),
      () => p.autoGc?.stop(),
      () => p.provider?.stop(),
      () => p.pool?.stop(),
      () => p.pins?.stop(),
      () => p.exchange?.stop(),
      () => p.libp2p?.stop(),
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
          // `npm start` on a fresh box: rewards on a local dev chain with no set-up
          const fresh = await loadConfig(init.repoPath)
          await saveConfig(init.repoPath, { ...fresh, chain: { ...fresh.chain, dev: true } })
        }
        const repo = p.repo = await openRepo(init.repoPath)
        const cfg = repo.config
        const maxBytes = parseBytes(cfg.storage.max)

        // pins read through bitswap's networked view of the store: a missing block is fetched from
        // peers (found through the DHTs), hash-verified and written into the repo's store
        const pins = p.pins = createPinManager({ db: repo.db, blockstore: repo.blockstore, leases: repo.leases }, {
          fetch: {
            get: async function * (cid: CID, options?: AbortOptions) {
              if (p.exchange == null) throw new NetworkNotStartedError()
              yield * p.exchange.blockstore.get(cid, options)
            }
          },
          onPinned: (pin, blocks) => { p.provider?.onPinned(pin, blocks) },
          onUnpinned: (pin) => { p.provider?.onUnpinned(pin) }
        })
        await pins.start()
        const gc = createGc({ blockstore: repo.blockstore, leases: repo.leases, reachable: (options?: AbortOptions) => pins.reachable(options) })
        const autoGc = p.autoGc = createAutoGc({ gc, blockstore: repo.blockstore }, {
          maxBytes,
          watermarkPercent: cfg.storage.gcWatermark,
          intervalMs: parseDuration(cfg.storage.gcInterval)
        })
        await autoGc.start()

        const net = networkConfig(cfg)
        // the pool's protocols (and its relay limits) are loaded only on a box with pool members
        const poolModule = cfg.pool.members.length > 0 ? await import('./pinning/pool/index.ts') : undefined
        // a pool member sends replicas from reused buffers, each taken back once noise has sealed it
        const sealWatch = poolModule == null ? undefined : createSealWatch()
        const options = await libp2pOptions({
          privateKey: repo.privateKey,
          datastore: repo.datastore,
          ...(init.onTraffic == null ? {} : { onTraffic: init.onTraffic }),
          ...(sealWatch == null ? {} : { onSeal: sealWatch.sealed })
        }, net, AGENT_VERSION)
        const libp2p = p.libp2p = await createLibp2p(poolModule?.withPoolRelay(options, cfg.pool.members) ?? options) as Libp2p<PinboxServices>
        const exchange = p.exchange = createBlockExchange({ libp2p, blockstore: repo.blockstore }, {
          maxInboundStreams: cfg.swarm.inboundStreams.bitswap
        })
        await exchange.start()

        if (poolModule != null) {
          const { createPool, poolComponents } = poolModule
          const pool = p.pool = createPool(poolComponents(repo, libp2p, pins, sealWatch), {
            members: cfg.pool.members,
            sharePerMember: parseBytes(cfg.pool.sharePerMember),
            maxBytes,
            healthIntervalMs: parseDuration(cfg.pool.healthInterval),
            gracePeriodMs: parseDuration(cfg.pool.gracePeriod),
            requestsPerMinute: cfg.pool.requestsPerMinute,
            cidsPerMinute: cfg.pool.cidsPerMinute,
            concurrency: cfg.pool.concurrency,
            requestTimeoutMs: parseDuration(cfg.pool.requestTimeout)
          })
          await pool.start()
        }

        const routers: ProvideRouter[] = []
        if (libp2p.services.aminoDHT != null) routers.push(dhtRouter('amino', libp2p.services.aminoDHT))
        if (libp2p.services.poolDHT != null) routers.push(dhtRouter('pool', libp2p.services.poolDHT))
        const provider = createProvider({ db: repo.db, routers, pins, blockstore: repo.blockstore, events: libp2p }, {
          strategy: cfg.provide.strategy,
          intervalMs: parseDuration(cfg.provide.interval),
          initialDelayMs: Math.min(60_000, parseDuration(cfg.provide.interval))
        })
        if (cfg.provide.enabled && routers.length > 0) {
          p.provider = provider
          await provider.start()
        }
        const swarm = createSwarm(libp2p, () => listenAddrs(libp2p, net.listen))

        const rewards = p.rewards = createNodeRewards({
          repoPath: repo.path,
          config: cfg.chain,
          blockstore: repo.blockstore,
          pins,
          db: repo.db.sublevel('rewards'),
          peer: { id: repo.peerId.toMultihash().bytes, sign: async (data) => await repo.privateKey.sign(data) },
          log: stderrLogger()
        })
        await rewards.start()

        const api = p.api = buildServer({
          blockstore: repo.blockstore,
          leases: repo.leases,
          pins,
          gc,
          autoGc,
          repo: { path: repo.path, maxBytes },
          importDefaults: resolveImportOptions(cfg.import.profile),
          // a lone box (no pool members) still serves the Pinning Service API with local pins
          replication: p.pool?.replication ?? localReplication(pins, { peerId: repo.peerId.toString() }),
          psaDb: repo.db.sublevel('psa'),
          dialOrigin: async (addr: string, options?: AbortOptions) => { await libp2p.dial(multiaddr(addr), options) },
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
          },
          swarm,
          ...(p.provider == null ? {} : { provider: p.provider }),
          rewards: () => rewards.service()
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

    libp2p () {
      if (parts?.libp2p == null) {
        throw new NodeStartError('the node is not started')
      }
      return parts.libp2p
    },

    info () {
      if (parts == null) {
        throw new NodeStartError('the node is not started')
      }
      return {
        peerId: parts.repo.peerId.toString(),
        addresses: parts.libp2p?.getMultiaddrs().map(String) ?? [],
        apiUrl: parts.apiUrl ?? '',
        repoPath: parts.repo.path
      }
    }
  }
}
