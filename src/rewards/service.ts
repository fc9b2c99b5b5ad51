/**
 * The rewards service of a daemon with a chain configured: unlocks the keystores in the
 * background (the API is up meanwhile; status `unlocking`), checks the chain, then runs the
 * responder (proofs, fault reports, claims, gas warnings) and offers the pool, deal and
 * claim operations the API exposes. Keys never leave this module's closures.
 */
import { CID } from 'multiformats/cid'
import { peerIdFromMultihash } from '@libp2p/peer-id'
import * as Digest from 'multiformats/hashes/digest'
import { formatEther, getBytes, parseEther } from 'ethers'
import type { Wallet } from 'ethers'
import { assertCommitmentOfDag, commitmentOfDag } from './commitment.ts'
import type { Commitment, CommitmentBlockstore } from './commitment.ts'
import { createChainClient, decodeChainError, withRetry } from './chain.ts'
import type { ChainClient, ChainParams, ChainSettings } from './chain.ts'
import { DealNotFoundError, RewardsUnavailableError, WalletLockedError } from './errors.ts'
import { createRecords } from './records.ts'
import type { DealRecord, RewardsDb, RewardsEvent, RewardsRecords } from './records.ts'
import { createResponder } from './responder.ts'
import type { Responder, ResponderState } from './responder.ts'
import { hasWallet, unlockWallet } from './wallet.ts'
import type { WalletRole } from './wallet.ts'
import type { Blockstore } from 'interface-blockstore'

export interface RewardsLogger {
  info(fields: object, msg: string): void
  warn(fields: object, msg: string): void
  error(fields: object, msg: string): void
}

export interface RewardsComponents {
  repoPath: string
  blockstore: CommitmentBlockstore & Pick<Blockstore, 'has'>
  pins: { add(cid: CID, options?: { recursive?: boolean }): Promise<unknown>, get(cid: CID): Promise<unknown> }
  db: RewardsDb
  /** The node's libp2p identity: its peer id (multihash bytes) and a signer for the join binding. */
  peer: { id: Uint8Array, sign(data: Uint8Array): Promise<Uint8Array> }
  log?: RewardsLogger
}

export interface RewardsInit {
  chain: ChainSettings
  /** The pool this node works in when it is not (yet) a member of one. */
  poolId?: number
  /** Resolved by the caller (file or env); undefined leaves the keys locked. */
  password?: () => Promise<string | undefined>
  pollIntervalMs?: number
  claimIntervalMs?: number
  /** Warn when the operator's gas balance is below this (wei). Default 0.01 ETH. */
  lowBalanceWei?: bigint
  reportFaults?: boolean
  /** Proof-building concurrency hints for commitments. */
  commitmentWorkers?: number
}

export type RewardsPhase = 'unlocking' | 'connecting' | 'ready' | 'error' | 'stopped'

export interface RewardsStatus extends ResponderState {
  status: RewardsPhase
  error?: string
  chainId: number
  rpcUrl: string
  storage: string
  token: string
  owner?: string
  operator?: string
  poolId?: number
  member: boolean
  epoch?: number
  claimable?: { owner?: string, operator?: string }
  events: RewardsEvent[]
}

export interface PoolMemberInfo {
  operator: string
  owner: string
  peerId?: string
  /** The peer key's signature over the join digest checks out. */
  verified: boolean
  stake: string
  slots: number
}

export interface DealInfo {
  id: string
  cid?: string
  requester: string
  root: string
  size: number
  replicas: number
  filled: number
  startEpoch: number
  endEpoch: number
  closed: boolean
  escrow: string
  role?: 'requester' | 'provider'
  held: boolean
}

export interface Balances {
  owner?: { address: string, eth: string, token: string }
  operator?: { address: string, eth: string, token: string }
}

export interface RewardsService {
  start(): Promise<void>
  stop(): Promise<void>
  status(): Promise<RewardsStatus>
  /** Resolves once keys are unlocked and the chain checked; rejects when that failed. */
  ready(): Promise<void>
  poolCreate(name: string, stake: bigint, pricePerGiBEpoch: bigint): Promise<{ poolId: number, tx: string }>
  poolJoin(poolId: number): Promise<{ poolId: number, operator: string, tx: string }>
  poolLeave(): Promise<{ state: 'leaving' | 'left', withdrawableAt?: number, tx: string }>
  poolMembers(poolId?: number): Promise<{ poolId: number, members: PoolMemberInfo[] }>
  dealCreate(cid: CID, replicas: number, epochs: number): Promise<{ dealId: string, escrow: string, commitment: Commitment, tx: string }>
  dealAccept(dealId: string): Promise<{ dealId: string, cid: string, tx: string }>
  dealLs(): Promise<DealInfo[]>
  claim(): Promise<{ claims: Array<{ account: string, amount: string, tx: string }> }>
  balances(): Promise<Balances>
}

function errorText (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** Serialises the transactions of one key so that concurrent sends never race for a nonce. */
function createMutex (): <T>(fn: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve()
  return async (fn) => {
    const run = tail.then(fn, fn)
    tail = run.catch(() => {})
    return await run
  }
}

export function createRewards (components: RewardsComponents, init: RewardsInit): RewardsService {
  const log = components.log
  const records: RewardsRecords = createRecords(components.db)
  let phase: RewardsPhase = 'stopped'
  let lastError: string | undefined
  let chain: ChainClient | undefined
  let params: ChainParams | undefined
  const keys: Partial<Record<WalletRole, Wallet>> = {}
  const locks: Record<WalletRole, <T>(fn: () => Promise<T>) => Promise<T>> = { owner: createMutex(), operator: createMutex() }
  let responder: Responder | undefined
  let controller: AbortController | undefined
  let startup: Promise<void> | undefined
  const cidCache = new Map<string, CID>()

  async function boot (signal: AbortSignal): Promise<void> {
    phase = 'unlocking'
    const password = await init.password?.()
    for (const role of ['operator', 'owner'] as const) {
      if (password == null || !await hasWallet(components.repoPath, role)) continue
      keys[role] = await unlockWallet(components.repoPath, role, password)
    }
    signal.throwIfAborted()
    phase = 'connecting'
    const client = chain = createChainClient(init.chain, { pollingIntervalMs: Math.min(1000, init.pollIntervalMs ?? 1000) })
    params = await withRetry(async () => await client.check({ signal }), {
      signal,
      onRetry: (err, delayMs) => { log?.warn({ delayMs, err: errorText(err) }, 'chain RPC endpoint unavailable, retrying') }
    })
    signal.throwIfAborted()
    phase = 'ready'
    log?.info({ chainId: init.chain.chainId, owner: keys.owner?.address, operator: keys.operator?.address }, 'rewards ready')
    responder = createResponder({
      chain: client,
      params,
      blockstore: components.blockstore,
      records,
      dealCid,
      keys,
      send,
      poolId: async () => await poolIdOf(),
      ...(log == null ? {} : { log })
    }, {
      pollIntervalMs: init.pollIntervalMs ?? 1000,
      claimIntervalMs: init.claimIntervalMs ?? 3_600_000,
      lowBalanceWei: init.lowBalanceWei ?? parseEther('0.01'),
      reportFaults: init.reportFaults ?? true
    })
    responder.start()
  }

  async function ready (): Promise<void> {
    if (startup == null) throw new RewardsUnavailableError('the rewards service is not running')
    await startup
  }

  async function client (): Promise<ChainClient> {
    await ready()
    if (chain == null) throw new RewardsUnavailableError()
    return chain
  }

  function key (role: WalletRole): Wallet {
    const k = keys[role]
    if (k == null) throw new WalletLockedError(`the ${role} key is not unlocked on this node (no keystore or no password)`)
    return k
  }

  /** Sends one transaction with `role`'s key and waits for its receipt; reverts become ERR_CHAIN_REVERT. */
  async function send (role: WalletRole, build: (storage: any, token: any) => Promise<any>): Promise<any> {
    const c = chain
    if (c == null) throw new RewardsUnavailableError()
    const wallet = key(role).connect(c.provider)
    return await locks[role](async () => {
      try {
        const tx = await build(c.storageAs(wallet), c.tokenAs(wallet))
        const receipt = await tx.wait()
        return receipt
      } catch (err) {
        throw decodeChainError(err)
      }
    })
  }

  function parseLogs (receipt: any, name: string): any[] {
    const out: any[] = []
    for (const l of receipt?.logs ?? []) {
      try {
        const parsed = chain?.storage.interface.parseLog(l)
        if (parsed?.name === name) out.push(parsed)
      } catch {
        // a token event
      }
    }
    return out
  }

  async function poolIdOf (): Promise<number | undefined> {
    const op = keys.operator?.address
    if (op != null && chain != null) {
      const m = await chain.storage.getMember(op)
      if (m.owner !== '0x0000000000000000000000000000000000000000') return Number(m.poolId)
    }
    return init.poolId
  }

  async function dealCid (dealId: bigint): Promise<CID> {
    const id = dealId.toString()
    const cached = cidCache.get(id)
    if (cached != null) return cached
    const rec = await records.getDeal(id)
    let cid: CID
    if (rec != null) {
      cid = CID.parse(rec.cid)
    } else {
      const c = await client()
      const logs = await c.storage.queryFilter(c.storage.filters.DealOpened(dealId), 0, 'latest')
      const first = logs[0]
      if (first == null) throw new DealNotFoundError(`deal ${id} does not exist on chain ${init.chain.chainId}`)
      cid = CID.decode(getBytes(first.args.cid))
    }
    cidCache.set(id, cid)
    return cid
  }

  async function dealInfo (c: ChainClient, id: bigint): Promise<DealInfo> {
    const d = await c.storage.getDeal(id)
    if (d.requester === '0x0000000000000000000000000000000000000000') throw new DealNotFoundError(`deal ${id} does not exist`)
    const op = keys.operator?.address
    const rec = await records.getDeal(id.toString())
    let cid: string | undefined = rec?.cid
    if (cid == null) cid = await dealCid(id).then(String, () => undefined)
    return {
      id: id.toString(),
      ...(cid == null ? {} : { cid }),
      requester: d.requester,
      root: d.root,
      size: Number(d.size),
      replicas: Number(d.replicas),
      filled: Number(d.filled),
      startEpoch: Number(d.startEpoch),
      endEpoch: Number(d.endEpoch),
      closed: d.closed as boolean,
      escrow: (d.escrow as bigint).toString(),
      ...(rec == null ? {} : { role: rec.role }),
      held: op == null ? false : await c.storage.slotHeld(id, op) as boolean
    }
  }

  return {
    async start () {
      if (startup != null) return
      controller = new AbortController()
      const signal = controller.signal
      startup = boot(signal).catch((err: unknown) => {
        if (signal.aborted) {
          phase = 'stopped'
          throw new RewardsUnavailableError('the rewards service stopped')
        }
        phase = 'error'
        lastError = errorText(err)
        log?.error({ err: lastError }, 'rewards did not start')
        throw err
      })
      // status() and the operations report the failure; nobody else awaits it
      startup.catch(() => {})
    },

    async stop () {
      if (startup == null) return
      controller?.abort()
      await responder?.stop()
      await startup.catch(() => {})
      chain?.close()
      startup = undefined
      responder = undefined
      chain = undefined
      phase = 'stopped'
    },

    ready,

    async status () {
      const base: RewardsStatus = {
        status: phase,
        chainId: init.chain.chainId,
        rpcUrl: init.chain.rpcUrl,
        storage: init.chain.storage,
        token: init.chain.token,
        member: false,
        ...(lastError == null ? {} : { error: lastError }),
        ...(keys.owner == null ? {} : { owner: keys.owner.address }),
        ...(keys.operator == null ? {} : { operator: keys.operator.address }),
        ...(responder?.state() ?? { proofs: 0, missed: 0, claims: 0, faultsReported: 0, lowBalance: false, rpc: 'unknown' as const }),
        events: await records.events({ limit: 20 })
      }
      if (phase !== 'ready' || chain == null || params == null) return base
      try {
        const block = await chain.provider.getBlockNumber()
        base.epoch = Math.floor((block - params.genesisBlock) / params.epochLength) + 1
        const poolId = await poolIdOf()
        if (poolId != null) base.poolId = poolId
        if (keys.operator != null) {
          const m = await chain.storage.getMember(keys.operator.address)
          base.member = m.owner !== '0x0000000000000000000000000000000000000000'
        }
        const claimable: { owner?: string, operator?: string } = {}
        for (const role of ['owner', 'operator'] as const) {
          const k = keys[role]
          if (k != null) claimable[role] = (await chain.storage.claimable(k.address) as bigint).toString()
        }
        base.claimable = claimable
      } catch (err) {
        base.error = `chain unavailable: ${errorText(err)}`
      }
      return base
    },

    async poolCreate (name, stake, price) {
      await client()
      const receipt = await send('owner', async (s) => await s.createPool(name, stake, price))
      const ev = parseLogs(receipt, 'PoolCreated')[0]
      return { poolId: Number(ev?.args.poolId ?? 0), tx: receipt.hash }
    },

    async poolJoin (poolId) {
      const c = await client()
      const owner = key('owner')
      const operator = key('operator')
      const pool = await c.storage.getPool(poolId)
      if (pool.creator === '0x0000000000000000000000000000000000000000') throw new DealNotFoundError(`pool ${poolId} does not exist`)
      const storageAddress = await c.storage.getAddress()
      const peerId = components.peer.id
      const digest: string = await c.storage.joinDigest(poolId, owner.address, operator.address, peerId)
      const domain = { name: 'PinboxStorage', version: '1', chainId: init.chain.chainId, verifyingContract: storageAddress }
      const types = {
        Join: [{ name: 'poolId', type: 'uint256' }, { name: 'owner', type: 'address' }, { name: 'operator', type: 'address' }, { name: 'peerId', type: 'bytes' }]
      }
      const operatorSig = await operator.signTypedData(domain, types, { poolId, owner: owner.address, operator: operator.address, peerId })
      const peerSig = await components.peer.sign(getBytes(digest))
      await send('owner', async (_s, t) => await t.approve(storageAddress, pool.stake))
      const receipt = await send('owner', async (s) => await s.join(poolId, operator.address, peerId, operatorSig, peerSig))
      return { poolId, operator: operator.address, tx: receipt.hash }
    },

    async poolLeave () {
      const c = await client()
      const operator = key('operator').address
      const m = await c.storage.getMember(operator)
      if (Number(m.leaveRequestedAt) === 0) {
        const receipt = await send('owner', async (s) => await s.requestLeave(operator))
        const delay = Number(await c.storage.unbondingDelay())
        return { state: 'leaving', withdrawableAt: receipt.blockNumber + delay, tx: receipt.hash }
      }
      const receipt = await send('owner', async (s) => await s.withdraw(operator))
      return { state: 'left', tx: receipt.hash }
    },

    async poolMembers (poolIdArg) {
      const c = await client()
      const poolId = poolIdArg ?? await poolIdOf()
      if (poolId == null) throw new RewardsUnavailableError('no pool: pass a pool id or join one')
      const operators: string[] = await c.storage.poolMembers(poolId)
      const joins = await c.storage.queryFilter(c.storage.filters.MemberJoined(poolId), 0, 'latest')
      const members: PoolMemberInfo[] = []
      for (const op of operators) {
        const m = await c.storage.getMember(op)
        // the latest join of this operator in this pool (an operator may have left and rejoined)
        const ev = [...joins].reverse().find((l: any) => l.args.operator === op) as any
        let peerId: string | undefined
        let verified = false
        if (ev != null) {
          try {
            const pid = peerIdFromMultihash(Digest.decode(getBytes(ev.args.peerId)))
            peerId = pid.toString()
            const digest: string = await c.storage.joinDigest(poolId, m.owner, op, ev.args.peerId)
            verified = pid.publicKey != null && await pid.publicKey.verify(getBytes(digest), getBytes(ev.args.peerSig))
          } catch {
            verified = false
          }
        }
        members.push({
          operator: op,
          owner: m.owner,
          ...(peerId == null ? {} : { peerId }),
          verified,
          stake: (m.stake as bigint).toString(),
          slots: Number(m.slotCount)
        })
      }
      return { poolId, members }
    },

    async dealCreate (cid, replicas, epochs) {
      const c = await client()
      const poolId = init.poolId ?? await poolIdOf()
      if (poolId == null) throw new RewardsUnavailableError('no pool configured (chain.poolId) to open the deal in')
      const commitment = await commitmentOfDag(components.blockstore, cid, init.commitmentWorkers == null ? {} : { workers: init.commitmentWorkers })
      // the requester keeps its copy: pinned durably before anyone is paid to hold one
      if (await components.pins.get(cid) == null) await components.pins.add(cid, { recursive: true })
      const pool = await c.storage.getPool(poolId)
      const escrow = BigInt(pool.pricePerGiBEpoch) * BigInt(commitment.size) * BigInt(replicas) * BigInt(epochs) / (1n << 30n)
      const storageAddress = await c.storage.getAddress()
      if (escrow > 0n) await send('owner', async (_s, t) => await t.approve(storageAddress, escrow))
      const receipt = await send('owner', async (s) => await s.openDeal(poolId, cid.bytes, commitment.root, commitment.size, commitment.segments, replicas, epochs))
      const ev = parseLogs(receipt, 'DealOpened')[0]
      const dealId = (ev?.args.dealId as bigint).toString()
      const rec: DealRecord = { id: dealId, cid: cid.toString(), role: 'requester', ...commitment }
      await records.putDeal(rec)
      await records.add({ type: 'deal-opened', dealId, amount: escrow.toString(), tx: receipt.hash })
      return { dealId, escrow: escrow.toString(), commitment, tx: receipt.hash }
    },

    async dealAccept (dealId) {
      const c = await client()
      const operator = key('operator').address
      key('owner')
      const id = BigInt(dealId)
      const d = await c.storage.getDeal(id)
      if (d.requester === '0x0000000000000000000000000000000000000000') throw new DealNotFoundError(`deal ${dealId} does not exist`)
      const cid = await dealCid(id)
      const size = Number(d.size)
      const expected: Commitment = { root: d.root, size, segments: Math.ceil(size / 1024) }
      // refuse before taking the slot: content that does not match would fail every challenge
      await assertCommitmentOfDag(components.blockstore, cid, expected, init.commitmentWorkers == null ? {} : { workers: init.commitmentWorkers })
      if (await components.pins.get(cid) == null) await components.pins.add(cid, { recursive: true })
      const receipt = await send('owner', async (s) => await s.acceptSlot(id, operator))
      await records.putDeal({ id: dealId, cid: cid.toString(), role: 'provider', ...expected })
      await records.add({ type: 'deal-accepted', dealId, tx: receipt.hash })
      return { dealId, cid: cid.toString(), tx: receipt.hash }
    },

    async dealLs () {
      const c = await client()
      const poolId = await poolIdOf()
      const ids = new Set<string>((await records.deals()).map(d => d.id))
      if (poolId != null) {
        for (const l of await c.storage.queryFilter(c.storage.filters.DealOpened(null, poolId), 0, 'latest') as any[]) {
          ids.add((l.args.dealId as bigint).toString())
        }
      }
      const out: DealInfo[] = []
      for (const id of [...ids].sort((a, b) => Number(BigInt(a) - BigInt(b)))) out.push(await dealInfo(c, BigInt(id)))
      return out
    },

    async claim () {
      const c = await client()
      const claims: Array<{ account: string, amount: string, tx: string }> = []
      for (const role of ['owner', 'operator'] as const) {
        const k = keys[role]
        if (k == null) continue
        if (await c.storage.claimable(k.address) as bigint === 0n) continue
        const receipt = await send(role, async (s) => await s.claim())
        const amount = (parseLogs(receipt, 'Claimed')[0]?.args.amount as bigint | undefined)?.toString() ?? '0'
        await records.add({ type: 'claim', account: k.address, amount, tx: receipt.hash })
        claims.push({ account: k.address, amount, tx: receipt.hash })
      }
      if (claims.length === 0 && keys.owner == null && keys.operator == null) throw new WalletLockedError('no key is unlocked to claim with')
      return { claims }
    },

    async balances () {
      const c = await client()
      const out: Balances = {}
      for (const role of ['owner', 'operator'] as const) {
        const k = keys[role]
        if (k == null) continue
        out[role] = {
          address: k.address,
          eth: formatEther(await c.provider.getBalance(k.address)),
          token: formatEther(await c.token.balanceOf(k.address) as bigint)
        }
      }
      return out
    }
  }
}
