import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, identifyPush } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import type { PrivateKey } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'
import type { Libp2pOptions } from 'libp2p'

export interface NetworkConfig {
  listen: string[]
  announce: string[]
}

export interface Libp2pComponents {
  privateKey: PrivateKey
  datastore: Datastore
}

/**
 * The libp2p options of a pinbox node. Only transports, encryption, muxing, identify and ping
 * live here; the pool protocols, DHTs and discovery are added by the services that own them.
 */
export function libp2pOptions (components: Libp2pComponents, config: NetworkConfig, agentVersion: string): Libp2pOptions<any> {
  return {
    privateKey: components.privateKey,
    datastore: components.datastore,
    nodeInfo: { name: 'pinbox', userAgent: agentVersion },
    addresses: {
      listen: config.listen,
      announce: config.announce
    },
    transports: [tcp(), webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      identifyPush: identifyPush(),
      ping: ping()
    }
  }
}
