/**
 * The challenge responder: on every new block it answers this operator's challenge of the
 * epoch from the local blockstore before the window closes, reports missed windows of the
 * other members of its pool (for the bounty), claims on a schedule and watches the operator's
 * gas balance. When the RPC endpoint is down it backs off (up to 30 s) and tries again; the
 * rest of the node keeps storing and serving meanwhile.
 */
import { formatEther } from 'ethers'
import type { Wallet } from 'ethers'
import { segmentProofOfDag } from './commitment.ts'
import type { CommitmentBlockstore } from './commitment.ts'
import { backoffDelay, decodeChainError, isUnavailable, sleep } from './chain.ts'
import type { ChainClient, ChainParams } from './chain.ts'
import type { RewardsRecords } from './records.ts'
import type { WalletRole } from './wallet.ts'
import type { CID } from 'multiformats/cid'

export interface ResponderState {
  proofs: number
  missed: number
  claims: number
  faultsReported: number
  /** The operator's gas balance is below the warning threshold. */
  lowBalance: boolean
  operatorBalance?: string
  rpc: 'up' | 'down' | 'unknown'
  lastProof?: { epoch: number, dealId: string, block: number }
  lastError?: string
}

interface Logger {
  info(fields: object, msg: string): void
  warn(fields: object, msg: string): void
  error(fields: object, msg: string): void
}

export interface ResponderComponents {
  chain: ChainClient
  params: ChainParams
  blockstore: CommitmentBlockstore
  records: RewardsRecords
  dealCid(dealId: bigint): Promise<CID>
  keys: Partial<Record<WalletRole, Wallet>>
  send(role: WalletRole, build: (storage: any, token: any) => Promise<any>): Promise<any>
  poolId(): Promise<number | undefined>
  log?: Logger
}

export interface ResponderInit {
  pollIntervalMs: number
  claimIntervalMs: number
  lowBalanceWei: bigint
  reportFaults: boolean
}

export interface Responder {
  start(): void
  stop(): Promise<void>
  state(): ResponderState
  /** One pass over the newest block; exposed for tests. */
  tick(): Promise<void>
}

const MAX_BACKOFF_MS = 30_000
const BALANCE_EVERY_BLOCKS = 10

function parsed (chain: ChainClient, receipt: any, name: string): any {
  for (const l of receipt?.logs ?? []) {
    try {
      const p = chain.storage.interface.parseLog(l)
      if (p?.name === name) return p
    } catch {
      // not a storage event
    }
  }
  return undefined
}

export function createResponder (components: ResponderComponents, init: ResponderInit): Responder {
  const { chain, params, keys, records, log } = components
  const state: ResponderState = { proofs: 0, missed: 0, claims: 0, faultsReported: 0, lowBalance: false, rpc: 'unknown' }
  let controller: AbortController | undefined
  let running: Promise<void> | undefined
  let lastBlock = -1
  let lastBalanceBlock = -Infinity
  let nextClaimAt = Date.now() + init.claimIntervalMs
  const attempted = new Set<number>()
  const checked = new Set<string>()
  let members: { epoch: number, list: string[] } | undefined

  const epochOf = (block: number): number => Math.floor((block - params.genesisBlock) / params.epochLength) + 1

  async function prove (block: number, epoch: number): Promise<void> {
    const op = keys.operator
    if (op == null || attempted.has(epoch)) return
    const ch = await chain.storage.challengeOf(op.address, epoch)
    if (!(ch.challenged as boolean) || ch.dealId === 0n) return
    const deadline = Number(ch.deadline)
    attempted.add(epoch)
    if (block + 1 > deadline) {
      state.missed++
      await records.add({ type: 'missed', epoch, dealId: ch.dealId.toString(), error: 'the window closed before this node saw the seed block' })
      return
    }
    const member = await chain.storage.getMember(op.address)
    if (Number(member.lastProvenEpoch) >= epoch) return
    const dealId = ch.dealId as bigint
    const index = Number(ch.index)
    try {
      const cid = await components.dealCid(dealId)
      const proof = await segmentProofOfDag(components.blockstore, cid, index)
      const receipt = await components.send('operator', async (s) => await s.proveSegment(dealId, index, proof.segment, proof.proof))
      const ev = parsed(chain, receipt, 'Proven')
      const amount = ev == null ? undefined : (ev.args.pay as bigint) + (ev.args.emission as bigint)
      state.proofs++
      state.lastProof = { epoch, dealId: dealId.toString(), block: receipt.blockNumber }
      await records.add({ type: 'proof', epoch, dealId: dealId.toString(), tx: receipt.hash, ...(amount == null ? {} : { amount: amount.toString() }) })
    } catch (err) {
      if (isUnavailable(err)) {
        // the endpoint failed, not the proof: try again on the next block while the window lasts
        attempted.delete(epoch)
        throw err
      }
      state.missed++
      const error = err instanceof Error ? err.message : String(err)
      state.lastError = error
      log?.error({ epoch, dealId: dealId.toString(), index, err: error }, 'could not answer the challenge')
      await records.add({ type: 'missed', epoch, dealId: dealId.toString(), error })
    }
  }

  async function report (block: number, epoch: number): Promise<void> {
    const reporter: WalletRole | undefined = keys.owner != null ? 'owner' : keys.operator != null ? 'operator' : undefined
    if (reporter == null) return
    const poolId = await components.poolId()
    if (poolId == null) return
    if (members?.epoch !== epoch) members = { epoch, list: await chain.storage.poolMembers(poolId) as string[] }
    const self = keys.operator?.address
    const from = keys[reporter]?.address
    for (const e of [epoch - 2, epoch - 1, epoch]) {
      if (e < 1) continue
      for (const op of members.list) {
        if (op === self) continue
        const key = `${op}:${e}`
        if (checked.has(key)) continue
        const ch = await chain.storage.challengeOf(op, e)
        if (!(ch.challenged as boolean)) {
          if (e < epoch) checked.add(key)
          continue
        }
        if (block < Number(ch.deadline)) continue
        try {
          await chain.storage.reportFault.staticCall(op, e, { from })
        } catch (err) {
          const decoded = decodeChainError(err) as { reason?: string }
          if (isUnavailable(err)) throw err
          if (decoded.reason !== 'PinboxStorageWindowOpen') checked.add(key)
          continue
        }
        checked.add(key)
        const receipt = await components.send(reporter, async (s) => await s.reportFault(op, e))
        const slashed = parsed(chain, receipt, 'Slashed')
        state.faultsReported++
        log?.warn({ operator: op, epoch: e, slashed: slashed != null }, 'reported a missed proof')
        await records.add({
          type: 'fault-reported',
          epoch: e,
          account: op,
          tx: receipt.hash,
          ...(slashed == null ? {} : { amount: (slashed.args.bounty as bigint).toString(), dealId: (slashed.args.dealId as bigint).toString() })
        })
      }
    }
    // keep the memory bounded: forget checks of epochs no longer reportable
    if (checked.size > 10_000) checked.clear()
  }

  async function claimAll (): Promise<void> {
    for (const role of ['owner', 'operator'] as const) {
      const k = keys[role]
      if (k == null) continue
      if (await chain.storage.claimable(k.address) as bigint === 0n) continue
      const receipt = await components.send(role, async (s) => await s.claim())
      const ev = parsed(chain, receipt, 'Claimed')
      state.claims++
      await records.add({ type: 'claim', account: k.address, tx: receipt.hash, amount: ((ev?.args.amount as bigint | undefined) ?? 0n).toString() })
    }
  }

  async function checkBalance (): Promise<void> {
    const op = keys.operator
    if (op == null) return
    const balance = await chain.provider.getBalance(op.address)
    const low = balance < init.lowBalanceWei
    if (low && !state.lowBalance) {
      log?.warn({ operator: op.address, balance: formatEther(balance), threshold: formatEther(init.lowBalanceWei) }, 'the operator key is low on gas: fund it or proofs will fail')
    }
    state.lowBalance = low
    state.operatorBalance = formatEther(balance)
  }

  async function tick (): Promise<void> {
    const block = await chain.provider.getBlockNumber()
    state.rpc = 'up'
    if (block === lastBlock) return
    lastBlock = block
    const epoch = epochOf(block + 1)
    await prove(block, epoch)
    if (init.reportFaults) await report(block, epoch)
    if (Date.now() >= nextClaimAt) {
      nextClaimAt = Date.now() + init.claimIntervalMs
      await claimAll()
    }
    if (block - lastBalanceBlock >= BALANCE_EVERY_BLOCKS) {
      lastBalanceBlock = block
      await checkBalance()
    }
    for (const e of attempted) if (e < epoch - 2) attempted.delete(e)
  }

  async function loop (signal: AbortSignal): Promise<void> {
    let failures = 0
    while (!signal.aborted) {
      let delay = init.pollIntervalMs
      try {
        await tick()
        failures = 0
      } catch (err) {
        if (signal.aborted) break
        if (isUnavailable(err)) {
          delay = backoffDelay(failures++, init.pollIntervalMs, MAX_BACKOFF_MS)
          if (state.rpc !== 'down') log?.warn({ retryMs: delay }, 'chain RPC endpoint unavailable; proofs wait, storage goes on')
          state.rpc = 'down'
        } else {
          const error = err instanceof Error ? err.message : String(err)
          state.lastError = error
          log?.error({ err: error }, 'rewards responder step failed')
        }
      }
      await sleep(delay, signal).catch(() => {})
    }
  }

  return {
    start () {
      if (running != null) return
      controller = new AbortController()
      running = loop(controller.signal)
    },
    async stop () {
      controller?.abort()
      await running
      running = undefined
    },
    state: () => ({ ...state }),
    tick
  }
}
