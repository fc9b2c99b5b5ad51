import type { Command } from 'commander'
import { action } from '../command.ts'
import type { Runtime } from '../command.ts'
import { example } from '../help.ts'
import { output } from '../printer.ts'

export interface IdResult {
  ID: string
  PublicKey?: string
  Addresses: string[] | null
  AgentVersion?: string
  Protocols?: string[] | null
  /** Bound listen addresses (from swarm/addrs/listen). */
  Listen?: string[]
}

export function registerId (program: Command, rt: Runtime): void {
  const cmd = program.command('id')
    .description('show this node\'s peer id, agent version and listen addresses')
    .action(action(rt, async (ctx) => {
      const api = await ctx.api()
      const res = await api.call<IdResult>('id')
      // the bound listen addresses (a /tcp/0 config shows its real port); older daemons lack the call
      const listen = await api.call<{ Strings: string[] | null }>('swarm/addrs/listen').then(r => r.Strings ?? [], () => undefined)
      return output({ ...res, ...(listen == null ? {} : { Listen: listen }) }, (d) => [
        `peer id: ${d.ID}`,
        ...(d.AgentVersion != null ? [`agent:   ${d.AgentVersion}`] : []),
        // announced: what peers are told to dial
        'addresses:',
        ...(d.Addresses ?? []).map((a) => `  ${a}`),
        ...(d.Listen != null ? ['listening on:', ...d.Listen.map((a) => `  ${a}`)] : [])
      ])
    }))
  example(cmd, 'pinbox id', 'pinbox --json id')
}
