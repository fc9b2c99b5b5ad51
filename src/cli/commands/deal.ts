import type { Command } from 'commander'
import { action, parseNonNegativeInt } from '../command.ts'
import type { Runtime } from '../command.ts'
import { example } from '../help.ts'
import { formatBytes, output } from '../printer.ts'

export interface CommitmentResult {
  root: string
  size: number
  segments: number
}

export interface DealEntry {
  id: string
  cid?: string
  size: number
  replicas: number
  filled: number
  endEpoch: number
  closed: boolean
  role?: string
  held: boolean
}

export function registerDeal (program: Command, rt: Runtime): void {
  const deal = program.command('deal')
    .description('storage deals: commitments and proofs of content, opening and accepting deals')
  example(deal, 'pinbox deal create bafy… --replicas 2 --epochs 100', 'pinbox deal ls')

  const commitment = deal.command('commitment')
    .description('the storage commitment (Merkle root over 1 KiB segments) of local content')
    .argument('<cid>', 'root CID')
    .action(action(rt, async (ctx, c) => {
      const [cid] = c.processedArgs as [string]
      const res = await (await ctx.api()).call<CommitmentResult>('deal/commitment', { arg: [cid] })
      return output(res, (d) => [`root     ${d.root}`, `size     ${d.size} (${formatBytes(d.size)})`, `segments ${d.segments}`])
    }))
  example(commitment, 'pinbox --json deal commitment bafy…')

  const proof = deal.command('proof')
    .description('segment INDEX of local content and its Merkle path, as the chain checks it')
    .argument('<cid>', 'root CID')
    .argument('<index>', 'segment index', parseNonNegativeInt)
    .action(action(rt, async (ctx, c) => {
      const [cid, index] = c.processedArgs as [string, number]
      const res = await (await ctx.api()).call<{ segment: string, proof: string[] }>('deal/proof', { arg: [cid], index })
      return output(res, (d) => [`segment ${d.segment}`, ...d.proof.map((p, i) => `proof[${i}] ${p}`)])
    }))
  example(proof, 'pinbox --json deal proof bafy… 0')

  const create = deal.command('create')
    .description('open a deal for local content: computes its commitment, pins it and escrows the price')
    .argument('<cid>', 'root CID')
    .option('--replicas <n>', 'replica slots', parseNonNegativeInt, 1)
    .requiredOption('--epochs <n>', 'duration in epochs', parseNonNegativeInt)
    .action(action(rt, async (ctx, c) => {
      const [cid] = c.processedArgs as [string]
      const { replicas, epochs } = c.opts<{ replicas: number, epochs: number }>()
      const res = await (await ctx.api()).call<{ dealId: string, escrow: string, commitment: CommitmentResult, tx: string }>('deal/create', { arg: [cid], replicas, epochs })
      return output(res, (d) => `opened deal ${d.dealId} for ${cid} (${formatBytes(d.commitment.size)}, escrow ${d.escrow} wei, tx ${d.tx})`)
    }))
  example(create, 'pinbox deal create bafy… --replicas 2 --epochs 100')

  const ls = deal.command('ls')
    .description('deals of this node\'s pool and the ones it opened or holds')
    .action(action(rt, async (ctx) => {
      const res = await (await ctx.api()).call<{ deals: DealEntry[] }>('deal/ls')
      return output(res, (d) => d.deals.length === 0
        ? 'no deals'
        : d.deals.map((x) => `${x.id} ${x.cid ?? '?'} ${formatBytes(x.size)} ${x.filled}/${x.replicas} until epoch ${x.endEpoch}${x.closed ? ' closed' : ''}${x.held ? ' held' : ''}${x.role != null ? ` (${x.role})` : ''}`))
    }))
  example(ls, 'pinbox deal ls', 'pinbox --json deal ls')

  const accept = deal.command('accept')
    .description('take a replica slot: the content must be local and match the deal\'s commitment; it is pinned first')
    .argument('<id>', 'deal id')
    .action(action(rt, async (ctx, c) => {
      const [id] = c.processedArgs as [string]
      const res = await (await ctx.api()).call<{ dealId: string, cid: string, tx: string }>('deal/accept', { arg: [id] })
      return output(res, (d) => `accepted a slot of deal ${d.dealId} (${d.cid}, tx ${d.tx})`)
    }))
  example(accept, 'pinbox dag import content.car && pinbox deal accept 7')
}
