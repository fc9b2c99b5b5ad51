import type { Command } from 'commander'
import { action } from '../command.ts'
import type { Runtime } from '../command.ts'
import { example } from '../help.ts'
import { output } from '../printer.ts'

export interface SwarmPeer {
  Addr: string
  Peer: string
  Latency?: string
  Direction?: number | string
}

interface Strings { Strings: string[] | null }

export function registerSwarm (program: Command, rt: Runtime): void {
  const swarm = program.command('swarm')
    .description('inspect and drive this node\'s libp2p connections')
  example(swarm, 'pinbox swarm peers', 'pinbox swarm connect /ip4/192.168.1.20/tcp/4101/p2p/12D3KooW…')

  const peers = swarm.command('peers')
    .description('list the peers this node is connected to')
    .action(action(rt, async (ctx) => {
      const res = await (await ctx.api()).call<{ Peers: SwarmPeer[] | null }>('swarm/peers', { direction: true })
      const list = res.Peers ?? []
      return output({ peers: list }, (d) => d.peers.length === 0
        ? 'no connected peers'
        : d.peers.map((p) => `${p.Addr}/p2p/${p.Peer}${p.Direction === 1 ? ' (inbound)' : ''}`))
    }))
  example(peers, 'pinbox swarm peers', 'pinbox --json swarm peers')

  const connect = swarm.command('connect')
    .description('open a connection to a peer by its multiaddr')
    .argument('<address...>', 'multiaddrs, e.g. /ip4/1.2.3.4/tcp/4101/p2p/12D3KooW…')
    .action(action(rt, async (ctx, c) => {
      const [addrs] = c.processedArgs as [string[]]
      const res = await (await ctx.api()).call<Strings>('swarm/connect', { arg: addrs })
      return output({ results: res.Strings ?? [] }, (d) => d.results)
    }))
  example(connect, 'pinbox swarm connect /ip4/192.168.1.20/tcp/4101/p2p/12D3KooW…')

  const disconnect = swarm.command('disconnect')
    .description('close every connection to a peer (a /p2p/ multiaddr or a peer id)')
    .argument('<peer...>', 'multiaddrs ending in /p2p/<peer id>, or peer ids')
    .action(action(rt, async (ctx, c) => {
      const [targets] = c.processedArgs as [string[]]
      const res = await (await ctx.api()).call<Strings>('swarm/disconnect', { arg: targets })
      return output({ results: res.Strings ?? [] }, (d) => d.results)
    }))
  example(disconnect, 'pinbox swarm disconnect 12D3KooW…')

  const addrs = swarm.command('addrs')
    .description('show this node\'s listen and announced addresses and those it knows for connected peers')
    .action(action(rt, async (ctx) => {
      const api = await ctx.api()
      const listen = (await api.call<Strings>('swarm/addrs/listen')).Strings ?? []
      const local = (await api.call<Strings>('swarm/addrs/local', { id: true })).Strings ?? []
      const known = (await api.call<{ Addrs: Record<string, string[]> | null }>('swarm/addrs')).Addrs ?? {}
      return output({ listen, announced: local, peers: known }, (d) => [
        'listening on:',
        ...d.listen.map((a) => `  ${a}`),
        'announced:',
        ...d.announced.map((a) => `  ${a}`),
        ...Object.entries(d.peers).flatMap(([peer, list]) => [`${peer} (${list.length})`, ...list.map((a) => `  ${a}`)])
      ])
    }))
  example(addrs, 'pinbox swarm addrs', 'pinbox --json swarm addrs')
}
