/**
 * Issue 4, item 11: two in-process daemons and a real anvil chain. A opens a deal for a
 * random 8 MiB file; B imports the blocks with `dag import`, accepts, and proves by itself
 * for at least 5 epochs; then B's blocks are deleted, B misses, A's responder reports the
 * faults, B is slashed and loses the slot; claims move exactly the formula's amounts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { readdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Contract, HDNodeWallet, JsonRpcProvider, parseEther } from 'ethers'
import { CID } from 'multiformats/cid'
import { STORAGE_ABI, TOKEN_ABI } from '../../src/rewards/abi.ts'
import { ANVIL_MNEMONIC, spawnAnvil } from '../../src/rewards/anvil.ts'
import type { AnvilProcess } from '../../src/rewards/anvil.ts'
import { deployPinbox } from '../../src/rewards/dev-chain.ts'
import { unlockWallet } from '../../src/rewards/wallet.ts'
import { PASSWORD, startRewardsNode, waitFor } from './helpers.ts'
import type { RewardsTestNode } from './helpers.ts'

const GIB = 1n << 30n
const EPOCH = 12
const WINDOW = 8
const STAKE = parseEther('1000')
const PRICE = parseEther('1') + 7n
const EMISSION = 1000n
const SLASH_BPS = 5000n
const BOUNTY_BPS = 1000n
const DURATION = 40
const CONFIG = {
  epochLength: EPOCH,
  proofWindow: WINDOW,
  unbondingDelay: 10,
  faultThreshold: 2,
  faultWindow: 6,
  slashBps: SLASH_BPS,
  bountyBps: BOUNTY_BPS,
  emissionPerByteEpoch: EMISSION
}
const BLOCK_MS = 200

async function filesUnder (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...await filesUnder(path))
    else out.push(path)
  }
  return out
}

describe('rewards end to end: two daemons and anvil', () => {
  const dirs: string[] = []
  let anvil: AnvilProcess
  let provider: JsonRpcProvider
  let storage: any
  let token: any
  let a: RewardsTestNode
  let b: RewardsTestNode
  let miner: NodeJS.Timeout | undefined
  let stderr = ''
  const write = process.stderr.write.bind(process.stderr)

  beforeAll(async () => {
    // the daemons log to stderr: keep a copy to check that no key ever shows up in it
    process.stderr.write = ((chunk: any, ...rest: any[]) => {
      stderr += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString()
      return write(chunk, ...rest)
    }) as typeof process.stderr.write
    anvil = await spawnAnvil()
    const chainId = Number(anvil.chainId)
    provider = new JsonRpcProvider(anvil.rpcUrl, chainId, { staticNetwork: true, pollingInterval: 50, cacheTimeout: -1 })
    const admin = HDNodeWallet.fromPhrase(ANVIL_MNEMONIC, undefined, "m/44'/60'/0'/0/0").connect(provider)
    const deployment = await deployPinbox(admin, CONFIG)
    storage = new Contract(deployment.storage, STORAGE_ABI as unknown as string[], admin)
    token = new Contract(deployment.token, TOKEN_ABI as unknown as string[], admin)
    const wait = async (p: Promise<any>): Promise<any> => await (await p).wait()
    await wait(storage.createPool('e2e', STAKE, PRICE))
    await wait(token.mint(admin.address, parseEther('1000000')))
    await wait(token.approve(deployment.storage, parseEther('1000000')))
    await wait(storage.fundReserve(parseEther('1000000')))

    const chain = { rpcUrl: anvil.rpcUrl, chainId, storage: deployment.storage, token: deployment.token, poolId: 1, pollInterval: '40ms' }
    // A warns about gas below 1000 ETH, so the warning path runs; B claims every second
    a = await startRewardsNode({ ...chain, claimInterval: '1h', lowBalance: '1000' }, dirs)
    b = await startRewardsNode({ ...chain, claimInterval: '1s' }, dirs)
    for (const address of [a.owner, a.operator, b.owner, b.operator]) {
      await anvil.rpc('anvil_setBalance', [address, '0x' + parseEther('10').toString(16)])
    }
    await wait(token.mint(a.owner, parseEther('10000')))
    await wait(token.mint(b.owner, parseEther('10000')))
  }, 60_000)

  afterAll(async () => {
    if (miner != null) clearInterval(miner)
    await a?.node.stop()
    await b?.node.stop()
    provider?.destroy()
    await anvil?.stop()
    process.stderr.write = write
    for (const dir of dirs) await rm(dir, { recursive: true, force: true })
  }, 30_000)

  it('deal, proofs by B for >= 5 epochs, faults after B loses the blocks, slash, exact claims', async () => {
    for (const n of [a, b]) {
      await waitFor('rewards ready', async () => (await n.rpc('rewards/status')).body?.status === 'ready')
    }

    // B joins pool 1: the owner stakes, the operator and the libp2p key sign the binding
    const joined = await b.rpc('pool/join', { arg: '1' })
    expect(joined.status, joined.text).toBe(200)
    const members = await a.rpc('pool/members', { arg: '1' })
    expect(members.body.members).toEqual([expect.objectContaining({ operator: b.operator, owner: b.owner, peerId: b.node.info().peerId, verified: true })])
    const ownerBAfterJoin: bigint = await token.balanceOf(b.owner)

    // A adds a random 8 MiB file and opens a deal for it
    const form = new FormData()
    form.append('file', new Blob([randomBytes(8 * 1024 * 1024)]), 'data.bin')
    const added = await a.rpc('add', { 'cid-version': '1' }, { form })
    expect(added.status, added.text).toBe(200)
    const cid = JSON.parse(added.text.trim().split('\n').pop() ?? '{}').Hash as string
    const commitment = (await a.rpc('deal/commitment', { arg: cid })).body
    expect(commitment.size).toBeGreaterThan(8 * 1024 * 1024)
    expect(commitment.segments).toBe(Math.ceil(commitment.size / 1024))
    const proofOf0 = (await a.rpc('deal/proof', { arg: cid, index: '0' })).body
    expect(proofOf0.segment).toMatch(/^0x[0-9a-f]{2048}$/)
    expect((await a.rpc('deal/proof', { arg: cid, index: String(commitment.segments) })).status).toBe(400)

    const created = await a.rpc('deal/create', { arg: cid, replicas: '1', epochs: String(DURATION) })
    expect(created.status, created.text).toBe(200)
    const dealId = BigInt(created.body.dealId)
    const size = BigInt(commitment.size)
    const escrow = PRICE * size * BigInt(DURATION) / GIB
    expect(BigInt(created.body.escrow)).toBe(escrow)
    const perSlot = escrow / BigInt(DURATION)

    // B without the blocks cannot accept: it checks the commitment against local content first
    const early = await b.rpc('deal/accept', { arg: String(dealId) })
    expect(early.status).not.toBe(200)
    expect(await storage.slotHeld(dealId, b.operator)).toBe(false)

    // B gets the blocks by dag import of A's export, then accepts
    const car = await a.raw('dag/export', { arg: cid })
    const carForm = new FormData()
    carForm.append('file', new Blob([car]), 'content.car')
    const imported = await b.rpc('dag/import', {}, { form: carForm })
    expect(imported.status, imported.text).toBe(200)
    // a deal whose commitment does not match the content is refused before any slot is taken
    const wait = async (p: Promise<any>): Promise<any> => await (await p).wait()
    await wait(token.mint(await storage.runner.getAddress(), parseEther('1000')))
    await wait(token.approve(await storage.getAddress(), parseEther('1000')))
    const lying = await wait(storage.openDeal(1, CID.parse(cid).bytes, '0x' + '11'.repeat(32), commitment.size, commitment.segments, 1, DURATION))
    const lyingId = storage.interface.parseLog(lying.logs.find((l: any) => storage.interface.parseLog(l)?.name === 'DealOpened')).args.dealId as bigint
    const refused = await b.rpc('deal/accept', { arg: String(lyingId) })
    expect(refused.status).toBe(409)
    expect(refused.text).toContain('the deal says 0x1111')
    expect(await storage.slotHeld(lyingId, b.operator)).toBe(false)

    const accepted = await b.rpc('deal/accept', { arg: String(dealId) })
    expect(accepted.status, accepted.text).toBe(200)
    expect(await storage.slotHeld(dealId, b.operator)).toBe(true)
    const listed = (await b.rpc('deal/ls')).body.deals
    expect(listed).toContainEqual(expect.objectContaining({ id: String(dealId), cid, held: true, role: 'provider' }))
    expect(listed).toContainEqual(expect.objectContaining({ id: String(lyingId), held: false }))

    // blocks come at a steady pace; B answers by itself
    miner = setInterval(() => { anvil.rpc('anvil_mine', ['0x1']).catch(() => {}) }, BLOCK_MS)
    const proven = await waitFor('5 proofs by B', async () => {
      const logs = await storage.queryFilter(storage.filters.Proven(b.operator), 0, 'latest')
      return logs.length >= 5 ? logs : undefined
    }, 90_000, 200)
    for (const log of proven) {
      expect(log.args.operator).toBe(b.operator)
      expect(log.args.dealId).toBe(dealId)
      expect(log.args.pay).toBe(perSlot)
      expect(log.args.emission).toBe(size * EMISSION)
    }
    const epochs = new Set(proven.map((l: any) => l.args.epoch))
    expect(epochs.size).toBe(proven.length)
    // B counts a proof once its own wait for the receipt returns, which can be after the log is visible here
    const status = await waitFor('B counting its 5 proofs', async () => {
      const body = (await b.rpc('rewards/status')).body
      return body.proofs >= 5 ? body : undefined
    }, 10_000, 100)
    expect(status.member).toBe(true)

    // B loses the content's blocks: it misses, A reports, F faults slash B and free its slot
    for (const file of await filesUnder(join(b.repo, 'blocks'))) {
      if ((await stat(file)).isFile()) await rm(file)
    }
    const slashed = await waitFor('B slashed', async () => {
      const logs = await storage.queryFilter(storage.filters.Slashed(b.operator), 0, 'latest')
      return logs[0]
    }, 90_000, 200)
    clearInterval(miner)
    miner = undefined
    const slash = STAKE * SLASH_BPS / 10_000n
    const bounty = slash * BOUNTY_BPS / 10_000n
    expect(slashed.args.amount).toBe(slash)
    expect(slashed.args.bounty).toBe(bounty)
    expect(slashed.args.reporter).toBe(a.owner)
    expect(slashed.args.dealId).toBe(dealId)
    const faults = await storage.queryFilter(storage.filters.FaultReported(b.operator), 0, 'latest')
    expect(faults.length).toBe(CONFIG.faultThreshold)
    for (const f of faults) expect(f.args.reporter).toBe(a.owner)
    expect(await storage.slotHeld(dealId, b.operator)).toBe(false)
    expect((await storage.getMember(b.operator)).stake).toBe(STAKE - slash)
    const missed = (await b.rpc('rewards/status')).body
    expect(missed.missed).toBeGreaterThanOrEqual(CONFIG.faultThreshold)

    // claims: B's scheduled claims plus what is left claimable equal every credited proof, to the wei
    const allProofs = await storage.queryFilter(storage.filters.Proven(b.operator), 0, 'latest')
    const earned = allProofs.reduce((sum: bigint, l: any) => sum + (l.args.pay as bigint) + (l.args.emission as bigint), 0n)
    await waitFor('B claimed', async () => (await storage.queryFilter(storage.filters.Claimed(b.owner), 0, 'latest')).length > 0, 10_000)
    await b.node.stop()
    const claimedLogs = await storage.queryFilter(storage.filters.Claimed(b.owner), 0, 'latest')
    const claimed = claimedLogs.reduce((sum: bigint, l: any) => sum + (l.args.amount as bigint), 0n)
    expect(claimed + await storage.claimable(b.owner) as bigint).toBe(earned)
    expect(await token.balanceOf(b.owner) - ownerBAfterJoin).toBe(claimed)

    // A claims its bounty through the API
    const ownerABefore: bigint = await token.balanceOf(a.owner)
    const claimA = await a.rpc('rewards/claim')
    expect(claimA.status, claimA.text).toBe(200)
    expect(claimA.body.claims).toEqual([expect.objectContaining({ account: a.owner, amount: bounty.toString() })])
    expect(await token.balanceOf(a.owner) - ownerABefore).toBe(bounty)

    // A's gas warning, and no key anywhere in output or answers
    const statusA = await a.rpc('rewards/status')
    expect(statusA.body.lowBalance).toBe(true)
    expect(stderr).toContain('low on gas')
    const texts = [stderr, statusA.text, (await a.rpc('wallet/balance')).text, (await a.rpc('pool/members', { arg: '1' })).text, claimA.text]
    for (const n of [a, b]) {
      for (const role of ['owner', 'operator'] as const) {
        const key = (await unlockWallet(n.repo, role, PASSWORD)).privateKey.slice(2).toLowerCase()
        for (const text of texts) expect(text.toLowerCase()).not.toContain(key)
      }
    }
  }, 240_000)
})
