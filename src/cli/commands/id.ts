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
}

export function registerId (program: Command, rt: Runtime): void {
  const cmd = program.command('id')
    .description('show this node\'s peer id, agent version and listen addresses')
    .action(action(rt, async (ctx) => {
      const res = await (await ctx.api()).call<IdResult>('id')
      return output(res, (d) => [
        `peer id: ${d.ID}`,
        ...(d.AgentVersion != null ? [`agent:   ${d.AgentVersion}`] : []),
        'addresses:',
        ...(d.Addresses ?? []).map((a) => `  ${a}`)
      ])
    }))
  example(cmd, 'pinbox id', 'pinbox --json id')
}
