import { args, requestSignal } from '../args.ts'
import { InvalidArgumentError } from '../errors.ts'
import { resolveArg } from '../resolve.ts'
import { commitmentOfDag, segmentProofOfDag } from '../../rewards/commitment.ts'
import { ChainNotConfiguredError } from '../../rewards/errors.ts'
import { q, query, rpc } from './rpc.ts'
import type { RewardsService } from '../../rewards/service.ts'
import type { RouteOptions } from '../server.ts'
import type { FastifyInstance } from 'fastify'

function service (options: RouteOptions): RewardsService {
  const rewards = options.components.rewards?.()
  if (rewards == null) throw new ChainNotConfiguredError()
  return rewards
}

function positiveInt (value: number | undefined, name: string, max = 65_535): number {
  if (value == null || !Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new InvalidArgumentError(`${name} must be a whole number from 1 to ${max}`)
  }
  return value
}

/** A decimal token amount (`1000`, `0.5`) in base units of an 18-decimal ERC-20. */
export function tokens (value: string | undefined, name: string): bigint {
  if (value == null || !/^\d+(\.\d+)?$/.test(value)) throw new InvalidArgumentError(`${name} must be a token amount like 1000 or 0.5`)
  // 18 decimals by hand: importing ethers here for parseEther costs every daemon ~8 MB and ~160
  // modules at start-up, whether or not a chain is configured
  const [whole = '0', frac = ''] = value.split('.')
  if (frac.length > 18) throw new InvalidArgumentError(`${name} has more than 18 decimals`)
  return BigInt(whole) * 10n ** 18n + BigInt(frac.padEnd(18, '0'))
}

/**
 * Deals, pools, wallet balances and rewards. `deal/commitment` and `deal/proof` work from the
 * local store with no chain; the rest go through the rewards service, which holds the keys
 * (no route ever returns a private key).
 */
export async function rewardsRoutes (app: FastifyInstance, options: RouteOptions): Promise<void> {
  const { blockstore } = options.components

  rpc<{ arg?: string[] }>(app, '/deal/commitment', { querystring: query({ arg: q.args }) }, async (request, reply) => {
    const signal = requestSignal(request, reply)
    const [arg] = args(request.query, { min: 1, max: 1, name: 'cid' }) as [string]
    const cid = await resolveArg(blockstore, arg, { signal })
    return await commitmentOfDag(blockstore, cid, { signal })
  })

  rpc<{ arg?: string[], index?: number }>(app, '/deal/proof', { querystring: query({ arg: q.args, index: q.int }) }, async (request, reply) => {
    const signal = requestSignal(request, reply)
    const [arg] = args(request.query, { min: 1, max: 1, name: 'cid' }) as [string]
    const index = request.query.index
    if (index == null) throw new InvalidArgumentError('index is required')
    const cid = await resolveArg(blockstore, arg, { signal })
    return await segmentProofOfDag(blockstore, cid, index, { signal })
  })

  rpc<{ arg?: string[], replicas?: number, epochs?: number }>(app, '/deal/create', {
    querystring: query({ arg: q.args, replicas: q.int, epochs: q.int })
  }, async (request, reply) => {
    const signal = requestSignal(request, reply)
    const [arg] = args(request.query, { min: 1, max: 1, name: 'cid' }) as [string]
    const replicas = positiveInt(request.query.replicas ?? 1, 'replicas', 16)
    const epochs = positiveInt(request.query.epochs, 'epochs')
    const cid = await resolveArg(blockstore, arg, { signal })
    return await service(options).dealCreate(cid, replicas, epochs)
  })

  rpc<{ arg?: string[] }>(app, '/deal/accept', { querystring: query({ arg: q.args }) }, async (request) => {
    const [id] = args(request.query, { min: 1, max: 1, name: 'deal id' }) as [string]
    if (!/^\d+$/.test(id) || id === '0') throw new InvalidArgumentError(`not a deal id: "${id}"`)
    return await service(options).dealAccept(id)
  })

  rpc(app, '/deal/ls', {}, async () => ({ deals: await service(options).dealLs() }))

  rpc<{ arg?: string[], stake?: string, price?: string }>(app, '/pool/create', {
    querystring: query({ arg: q.args, stake: q.str, price: q.str })
  }, async (request) => {
    const [name] = args(request.query, { min: 1, max: 1, name: 'name' }) as [string]
    return await service(options).poolCreate(name, tokens(request.query.stake, 'stake'), tokens(request.query.price, 'price'))
  })

  rpc<{ arg?: string[] }>(app, '/pool/join', { querystring: query({ arg: q.args }) }, async (request) => {
    const [id] = args(request.query, { min: 1, max: 1, name: 'pool id' }) as [string]
    return await service(options).poolJoin(positiveInt(Number(id), 'pool id', 2 ** 32 - 1))
  })

  rpc(app, '/pool/leave', {}, async () => await service(options).poolLeave())

  rpc<{ arg?: string[] }>(app, '/pool/members', { querystring: query({ arg: q.args }) }, async (request) => {
    const [id] = args(request.query, { max: 1, name: 'pool id' })
    return await service(options).poolMembers(id == null ? undefined : positiveInt(Number(id), 'pool id', 2 ** 32 - 1))
  })

  rpc(app, '/rewards/status', {}, async () => {
    const rewards = options.components.rewards?.()
    if (rewards == null) return { status: 'off' }
    return await rewards.status()
  })

  rpc(app, '/rewards/claim', {}, async () => await service(options).claim())

  rpc(app, '/wallet/balance', {}, async () => await service(options).balances())
}
