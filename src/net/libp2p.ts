import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify, identifyPush } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { bandwidthLimiter } from './bandwidth.ts'
import { noiseCrypto } from './noise-crypto.ts'
import { connectionPruner } from './pruner.ts'
import { parseBytes } from '../store/config.ts'
import type { PinboxConfig } from '../store/config.ts'
import type { KadDHT } from '@libp2p/kad-dht'
import type { PeerDiscovery, PrivateKey } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'
import type { Libp2pOptions } from 'libp2p'

/** The Amino DHT's protocol: the one the wider IPFS network speaks. */
export const AMINO_PROTOCOL = '/ipfs/kad/1.0.0'
/** pinbox's own mDNS service name, so a box never pulls in every Kubo node on the LAN. */
export const MDNS_SERVICE_TAG = '_pinbox._udp.local'
/** The most one yamux stream lets its peer send ahead of the reader. */
export const STREAM_WINDOW_BYTES = 4 * 1024 * 1024

export function poolDhtProtocol (poolId: string): string {
  return `/pinbox/${poolId}/kad/1.0.0`
}

export interface NetworkConfig {
  listen: string[]
  announce: string[]
  bootstrap?: string[]
  mdns?: boolean
  upnp?: boolean
  autonat?: boolean
  relay?: { server: boolean }
  connections?: { low: number, high: number }
  inboundStreams?: { bitswap: number, dht: number, identify: number, ping: number }
  /** Bytes per second, 0 for unlimited. */
  bandwidth?: { up: number, down: number }
  dht?: {
    amino: { enabled: boolean, mode: 'client' | 'server' }
    pool: { enabled: boolean }
  }
  poolId?: string
  /**
   * Keep private and loopback addresses in DHT records. Off for the Amino DHT in real use (a
   * LAN address is noise to the world); the pool DHT always keeps them, as members share LANs.
   */
  dhtPrivateAddresses?: boolean
}

export interface Libp2pComponents {
  privateKey: PrivateKey
  datastore: Datastore
  /** Told the bytes of every large encrypted frame sent or received (the daemon's GC pacer). */
  onTraffic?(bytes: number): void
  /** Told every plaintext piece noise has sealed (src/net/seal-watch.ts). */
  onSeal?(piece: Uint8Array): void
}

/** The libp2p services a pinbox node may run; the DHTs are absent when turned off. */
export interface PinboxServices extends Record<string, unknown> {
  identify: unknown
  identifyPush: unknown
  ping: unknown
  aminoDHT?: KadDHT
  poolDHT?: KadDHT
}

/** The network settings of a validated repo config. */
export function networkConfig (cfg: PinboxConfig): NetworkConfig {
  const pool = cfg.dht.pool.enabled
  return {
    ...cfg.swarm,
    bandwidth: { up: parseBytes(cfg.swarm.bandwidth.up), down: parseBytes(cfg.swarm.bandwidth.down) },
    dht: { amino: cfg.dht.amino, pool: { enabled: pool === 'auto' ? cfg.pool.members.length > 0 : pool } },
    poolId: cfg.pool.id
  }
}

/**
 * The libp2p options of a pinbox node: transports, security, discovery, NAT traversal, DHTs, limits.
 * Services a config may turn off are loaded only when it turns them on: every module the daemon
 * loads costs start-up time and resident memory on a small box (UPnP alone pulls in an HTTP
 * client and an XML parser).
 */
export async function libp2pOptions (components: Libp2pComponents, config: NetworkConfig, agentVersion: string): Promise<Libp2pOptions<any>> {
  const streams = config.inboundStreams
  const connections = config.connections ?? { low: 64, high: 256 }
  const peerDiscovery: Array<(components: any) => PeerDiscovery> = []
  if ((config.bootstrap ?? []).length > 0) {
    const { bootstrap } = await import('@libp2p/bootstrap')
    peerDiscovery.push(bootstrap({ list: config.bootstrap ?? [] }))
  }
  if (config.mdns === true) {
    const { mdns } = await import('@libp2p/mdns')
    peerDiscovery.push(mdns({ serviceTag: MDNS_SERVICE_TAG }))
  }

  const services: Record<string, (components: any) => unknown> = {
    identify: identify(streams == null ? {} : { maxInboundStreams: streams.identify }),
    identifyPush: identifyPush(streams == null ? {} : { maxInboundStreams: streams.identify }),
    ping: ping(streams == null ? {} : { maxInboundStreams: streams.ping }),
    pruner: connectionPruner(connections)
  }
  const dht = config.dht ?? { amino: { enabled: true, mode: 'client' }, pool: { enabled: true } }
  if (dht.amino.enabled || dht.pool.enabled) {
    const { kadDHT, passthroughMapper, removePrivateAddressesMapper } = await import('@libp2p/kad-dht')
    if (dht.amino.enabled) {
      services.aminoDHT = kadDHT({
        protocol: AMINO_PROTOCOL,
        clientMode: dht.amino.mode === 'client',
        peerInfoMapper: config.dhtPrivateAddresses === true ? passthroughMapper : removePrivateAddressesMapper,
        logPrefix: 'libp2p:dht-amino',
        datastorePrefix: '/dht-amino',
        metricsPrefix: 'libp2p_dht_amino',
        ...(streams == null ? {} : { maxInboundStreams: streams.dht })
      })
    }
    if (dht.pool.enabled) {
      services.poolDHT = kadDHT({
        protocol: poolDhtProtocol(config.poolId ?? 'default'),
        clientMode: false,
        peerInfoMapper: passthroughMapper,
        logPrefix: 'libp2p:dht-pool',
        datastorePrefix: '/dht-pool',
        metricsPrefix: 'libp2p_dht_pool',
        ...(streams == null ? {} : { maxInboundStreams: streams.dht })
      })
    }
  }
  if (config.autonat !== false) {
    const [{ autoNAT }, { dcutr }] = await Promise.all([import('@libp2p/autonat'), import('@libp2p/dcutr')])
    services.autoNAT = autoNAT()
    services.dcutr = dcutr()
  }
  if (config.upnp === true) {
    const { uPnPNAT } = await import('@libp2p/upnp-nat')
    services.upnp = uPnPNAT()
  }
  if (config.relay?.server === true) {
    services.relay = circuitRelayServer()
  }

  const protector = bandwidthLimiter(config.bandwidth ?? { up: 0, down: 0 })
  return {
    privateKey: components.privateKey,
    datastore: components.datastore,
    nodeInfo: { name: 'pinbox', userAgent: agentVersion },
    addresses: {
      listen: config.listen,
      announce: config.announce
    },
    transports: [tcp(), webSockets(), circuitRelayTransport()],
    connectionEncrypters: [noise({
      crypto: noiseCrypto({
        ...(components.onTraffic == null ? {} : { onBytes: components.onTraffic }),
        ...(components.onSeal == null ? {} : { onSeal: components.onSeal })
      })
    })],
    // yamux grows a stream's window to 16 MiB by default and a paused reader still receives what was granted:
    // a replica fetch held 2 x 16 MiB per stream; 4 MiB keeps the window above a fast link's bandwidth-delay product
    streamMuxers: [yamux({ streamOptions: { maxStreamWindowSize: STREAM_WINDOW_BYTES } })],
    ...(protector == null ? {} : { connectionProtector: protector }),
    connectionManager: {
      maxConnections: connections.high
    },
    peerDiscovery,
    services
  }
}
