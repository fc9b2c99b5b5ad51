import type { Command } from 'commander'
import { action } from '../command.ts'
import type { Runtime } from '../command.ts'
import { example } from '../help.ts'
import { output } from '../printer.ts'
// the API's JSON shape, a type only: the CLI still reaches the daemon over HTTP alone
import type { PoolMemberInfo } from '../../rewards/service.ts'

export function registerPool (program: Command, rt: Runtime): void {
  const pool = program.command('pool')
    .description('on-chain storage pools: create one, join or leave with this node, list members')
  example(pool, 'pinbox pool join 1', 'pinbox pool members')

  const create = pool.command('create')
    .description('create a pool (needs the pool-admin role on the storage contract)')
    .argument('<name>', 'pool name')
    .requiredOption('--stake <tokens>', 'stake each member locks, in tokens')
    .requiredOption('--price <tokens>', 'deal price per GiB per epoch, in tokens')
    .action(action(rt, async (ctx, c) => {
      const [name] = c.processedArgs as [string]
      const { stake, price } = c.opts<{ stake: string, price: string }>()
      const res = await (await ctx.api()).call<{ poolId: number, tx: string }>('pool/create', { arg: [name], stake, price })
      return output(res, (d) => `created pool ${d.poolId} (tx ${d.tx})`)
    }))
  example(create, 'pinbox pool create home --stake 1000 --price 1')

  const join = pool.command('join')
    .description('join a pool with this node: the owner stakes, the operator key and the peer key sign the binding')
    .argument('<pool-id>', 'pool id')
    .action(action(rt, async (ctx, c) => {
      const [id] = c.processedArgs as [string]
      const res = await (await ctx.api()).call<{ poolId: number, operator: string, tx: string }>('pool/join', { arg: [id] })
      return output(res, (d) => `joined pool ${d.poolId} as operator ${d.operator} (tx ${d.tx})`)
    }))
  example(join, 'pinbox pool join 1')

  const leave = pool.command('leave')
    .description('start leaving the pool; run again after the unbonding delay to withdraw the stake')
    .action(action(rt, async (ctx) => {
      const res = await (await ctx.api()).call<{ state: string, withdrawableAt?: number, tx: string }>('pool/leave')
      return output(res, (d) => d.state === 'left'
        ? `left the pool; stake returned to the owner (tx ${d.tx})`
        : `leaving; run \`pinbox pool leave\` again from block ${d.withdrawableAt ?? '?'} to withdraw (tx ${d.tx})`)
    }))
  example(leave, 'pinbox pool leave')

  const members = pool.command('members')
    .description('members of a pool (default: this node\'s) with their libp2p peer ids, for the pool protocol')
    .argument('[pool-id]', 'pool id')
    .action(action(rt, async (ctx, c) => {
      const [id] = c.processedArgs as [string | undefined]
      const res = await (await ctx.api()).call<{ poolId: number, members: PoolMemberInfo[] }>('pool/members', { arg: id == null ? [] : [id] })
      return output(res, (d) => d.members.length === 0
        ? `pool ${d.poolId} has no members`
        : d.members.map((m) => `${m.peerId ?? '(no peer id)'} operator ${m.operator} slots ${m.slots}${m.verified ? '' : ' (peer signature not verified)'}`))
    }))
  example(members, 'pinbox pool members', 'pinbox --json pool members 1')
}
