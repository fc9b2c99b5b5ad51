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

export function registerSwarm (program: Command, rt: Runtime): void {
  const swarm = program.command('swarm')
    .description('inspect this node\'s libp2p connections')
  example(swarm, 'pinbox swarm peers')

  const peers = swarm.command('peers')
    .description('list the peers this node is connected to')
    .action(action(rt, async (ctx) => {
      const res = await (await ctx.api()).call<{ Peers: SwarmPeer[] | null }>('swarm/peers')
      const list = res.Peers ?? []
      return output({ peers: list }, (d) => d.peers.length === 0
        ? 'no connected peers'
        : d.peers.map((p) => `${p.Addr}/p2p/${p.Peer}`))
    }))
  example(peers, 'pinbox swarm peers', 'pinbox --json swarm peers')
}
