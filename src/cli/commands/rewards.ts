import type { Command } from 'commander'
import { action } from '../command.ts'
import type { Runtime } from '../command.ts'
import { example } from '../help.ts'
import { output } from '../printer.ts'

export interface RewardsStatusResult {
  status: string
  error?: string
  chainId?: number
  owner?: string
  operator?: string
  member?: boolean
  epoch?: number
  proofs?: number
  missed?: number
  claims?: number
  faultsReported?: number
  lowBalance?: boolean
  operatorBalance?: string
  rpc?: string
  claimable?: { owner?: string, operator?: string }
}

export function registerRewards (program: Command, rt: Runtime): void {
  const rewards = program.command('rewards')
    .description('storage proofs and rewards of this node')
  example(rewards, 'pinbox rewards status', 'pinbox rewards claim')

  const status = rewards.command('status')
    .description('chain, keys, proofs, misses, fault reports and claimable rewards')
    .action(action(rt, async (ctx) => {
      const res = await (await ctx.api()).call<RewardsStatusResult>('rewards/status')
      return output(res, (d) => d.status === 'off'
        ? 'rewards are off: no chain configured (run `pinbox chain dev` for a local one)'
        : [
            `status    ${d.status}${d.error != null ? ` (${d.error})` : ''}`,
            `chain     ${d.chainId ?? '?'} (rpc ${d.rpc ?? '?'})`,
            `owner     ${d.owner ?? '(locked)'}`,
            `operator  ${d.operator ?? '(locked)'}${d.lowBalance === true ? ` LOW GAS: ${d.operatorBalance ?? '?'} ETH` : ''}`,
            `member    ${d.member === true ? 'yes' : 'no'}${d.epoch != null ? `, epoch ${d.epoch}` : ''}`,
            `proofs    ${d.proofs ?? 0} (missed ${d.missed ?? 0}), faults reported ${d.faultsReported ?? 0}, claims ${d.claims ?? 0}`,
            `claimable ${d.claimable?.owner ?? '0'} wei`
          ])
    }))
  example(status, 'pinbox rewards status', 'pinbox --json rewards status')

  const claim = rewards.command('claim')
    .description('claim the rewards credited so far (paid to the owner; a reporter\'s bounty to its key)')
    .action(action(rt, async (ctx) => {
      const res = await (await ctx.api()).call<{ claims: Array<{ account: string, amount: string, tx: string }> }>('rewards/claim')
      return output(res, (d) => d.claims.length === 0 ? 'nothing to claim' : d.claims.map((x) => `claimed ${x.amount} wei to ${x.account} (tx ${x.tx})`))
    }))
  example(claim, 'pinbox rewards claim')
}
