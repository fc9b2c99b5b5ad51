import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { HDNodeWallet, Interface, JsonRpcProvider, Wallet } from 'ethers'
import { STORAGE_ABI, TOKEN_ABI } from '../../src/rewards/abi.ts'
import { ANVIL_MNEMONIC, freePort, spawnAnvil } from '../../src/rewards/anvil.ts'
import type { AnvilProcess } from '../../src/rewards/anvil.ts'
import { backoffDelay, createChainClient, withRetry } from '../../src/rewards/chain.ts'
import { ChainUnavailableError } from '../../src/rewards/errors.ts'
import { ARTIFACTS_DIR } from '../../contracts/build.ts'
import { DEV_DEPLOY, deployPinbox, ensureArtifacts } from '../../src/rewards/dev-chain.ts'
import type { Deployment } from '../../src/rewards/dev-chain.ts'
import { startRewardsNode, waitFor } from './helpers.ts'
import type { RewardsTestNode } from './helpers.ts'

describe('chain client', () => {
  let anvil: AnvilProcess
  let provider: JsonRpcProvider
  let deployment: Deployment
  let chainId: number
  const dirs: string[] = []

  beforeAll(async () => {
    anvil = await spawnAnvil()
    chainId = Number(anvil.chainId)
    provider = new JsonRpcProvider(anvil.rpcUrl, chainId, { staticNetwork: true, pollingInterval: 50, cacheTimeout: -1 })
    const admin = HDNodeWallet.fromPhrase(ANVIL_MNEMONIC, undefined, "m/44'/60'/0'/0/0").connect(provider)
    deployment = await deployPinbox(admin, DEV_DEPLOY)
  }, 60_000)

  afterAll(async () => {
    provider?.destroy()
    await anvil?.stop()
    for (const dir of dirs) await rm(dir, { recursive: true, force: true })
  })

  it('accepts the right chain and reads its parameters', async () => {
    const client = createChainClient({ rpcUrl: anvil.rpcUrl, chainId, ...deployment })
    try {
      const params = await client.check()
      expect(params.epochLength).toBe(DEV_DEPLOY.epochLength)
      expect(params.proofWindow).toBe(DEV_DEPLOY.proofWindow)
    } finally {
      client.close()
    }
  })

  it('refuses a wrong chain id and wrong contract addresses with typed errors', async () => {
    const cases: Array<[Partial<Deployment> & { chainId?: number }, string]> = [
      [{ chainId: chainId + 1 }, 'ERR_CHAIN_ID_MISMATCH'],
      [{ storage: Wallet.createRandom().address }, 'ERR_CONTRACT_NOT_FOUND'],
      [{ storage: deployment.token }, 'ERR_CONTRACT_NOT_FOUND'],
      [{ token: deployment.storage }, 'ERR_CONTRACT_NOT_FOUND'],
      [{ token: 'not-an-address' }, 'ERR_CONTRACT_NOT_FOUND']
    ]
    for (const [change, code] of cases) {
      let client: ReturnType<typeof createChainClient> | undefined
      const attempt = async (): Promise<unknown> => {
        client = createChainClient({ rpcUrl: anvil.rpcUrl, chainId, ...deployment, ...change })
        return await client.check()
      }
      await expect(attempt(), JSON.stringify(change)).rejects.toMatchObject({ code })
      client?.close()
    }
  })

  it('an RPC endpoint that is down is ERR_CHAIN_UNAVAILABLE; withRetry backs off until it answers', async () => {
    const port = await freePort()
    const client = createChainClient({ rpcUrl: `http://127.0.0.1:${port}`, chainId, ...deployment })
    await expect(client.check()).rejects.toMatchObject({ code: 'ERR_CHAIN_UNAVAILABLE' })
    client.close()
    expect([0, 1, 2, 3, 10].map(a => backoffDelay(a, 500, 30_000))).toEqual([500, 1000, 2000, 4000, 30_000])
    const delays: number[] = []
    let calls = 0
    const value = await withRetry(async () => {
      if (++calls < 4) throw new ChainUnavailableError()
      return 'up'
    }, { baseMs: 5, onRetry: (_err, ms) => { delays.push(ms) } })
    expect(value).toBe('up')
    expect(delays).toEqual([5, 10, 20])
    // a revert is not retried
    await expect(withRetry(async () => { throw Object.assign(new Error('reverted'), { code: 'CALL_EXCEPTION' }) })).rejects.toThrow('reverted')
  })

  it('a daemon is refused at start on a wrong chain id, naming both ids', async () => {
    await expect(startRewardsNode({ rpcUrl: anvil.rpcUrl, chainId: chainId + 5, ...deployment }, dirs))
      .rejects.toMatchObject({ code: 'ERR_CHAIN_ID_MISMATCH', message: expect.stringContaining(String(chainId + 5)) })
    await expect(startRewardsNode({ rpcUrl: anvil.rpcUrl, chainId, storage: Wallet.createRandom().address, token: deployment.token }, dirs))
      .rejects.toMatchObject({ code: 'ERR_CONTRACT_NOT_FOUND' })
  }, 30_000)

  it('with the RPC endpoint down the daemon starts, stores and serves, and connects when the chain comes up', async () => {
    const port = await freePort()
    let node: RewardsTestNode | undefined
    let late: AnvilProcess | undefined
    try {
      node = await startRewardsNode({ rpcUrl: `http://127.0.0.1:${port}`, chainId, ...deployment }, dirs)
      const form = new FormData()
      form.append('file', new Blob(['stored while the chain is down']), 'a.txt')
      const added = await node.rpc('add', {}, { form })
      expect(added.status).toBe(200)
      const cid = JSON.parse(added.text.trim()).Hash as string
      const cat = await node.raw('cat', { arg: cid })
      expect(Buffer.from(cat).toString()).toBe('stored while the chain is down')
      await waitFor('unlocked and connecting', async () => (await node?.rpc('rewards/status'))?.body.status === 'connecting')
      const offline = await node.rpc('deal/commitment', { arg: cid })
      expect(offline.status).toBe(200)
      expect(offline.body.segments).toBe(1)
      // a fresh chain on that port without the contracts: the retry reaches it and reports the error
      late = await spawnAnvil({ port })
      const status = await waitFor('status error', async () => {
        const s = (await node?.rpc('rewards/status'))?.body
        return s?.status === 'error' ? s : undefined
      }, 20_000)
      expect(status.error).toMatch(/no contract/)
    } finally {
      await node?.node.stop()
      await late?.stop()
    }
  }, 60_000)

  it('the human-readable ABIs match the compiled contracts', async () => {
    await ensureArtifacts()
    for (const [name, abi] of [['PinboxStorage', STORAGE_ABI], ['PinboxToken', TOKEN_ABI]] as const) {
      const artifact = JSON.parse(await readFile(join(ARTIFACTS_DIR, `${name}.json`), 'utf8')) as { abi: any[] }
      expect(new Interface(abi as unknown as string[]).format(false)).toEqual(new Interface(artifact.abi).format(false))
    }
  })
})
