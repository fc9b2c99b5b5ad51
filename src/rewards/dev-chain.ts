/**
 * `pinbox chain dev`: a local anvil chain for a new user, with the contracts deployed, a
 * default pool, the reserve funded, this node's keys funded and joined, and the chain
 * settings written into the repo's config. The chain's state lives in `<repo>/chain/` so a
 * restart keeps deals and balances.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ContractFactory, HDNodeWallet, JsonRpcProvider, NonceManager, parseEther, randomBytes, hexlify, getBytes } from 'ethers'
import type { Signer } from 'ethers'
import { ARTIFACTS_DIR, ROOT, STAMP, sourcesMtime } from '../../contracts/build.ts'
import { loadConfig, saveConfig } from '../store/repo.ts'
import { ANVIL_MNEMONIC, spawnAnvil } from './anvil.ts'
import type { AnvilProcess } from './anvil.ts'
import { createChainClient } from './chain.ts'
import type { ChainSettings } from './chain.ts'
import { KEYSTORE_DIR, PASSWORD_ENV, createWallets, hasWallet, unlockWallet } from './wallet.ts'
import { atomicWriteFile } from '../store/fs-util.ts'

export interface DeployConfig {
  epochLength: number
  proofWindow: number
  unbondingDelay: number
  faultThreshold: number
  faultWindow: number
  slashBps: number | bigint
  bountyBps: number | bigint
  emissionPerByteEpoch: bigint
}

/** A minute-long epoch at one block a second: rewards show within a minute of `npm start`. */
export const DEV_DEPLOY: DeployConfig = {
  epochLength: 60,
  proofWindow: 20,
  unbondingDelay: 60,
  faultThreshold: 3,
  faultWindow: 10,
  slashBps: 1000,
  bountyBps: 1000,
  emissionPerByteEpoch: 1_000_000n
}

export const DEV_POOL = { name: 'default', stake: parseEther('1000'), pricePerGiBEpoch: parseEther('1') }
export const DEV_PASSWORD_FILE = 'dev-password'

export interface Deployment {
  token: string
  storage: string
}

/** Builds artifacts/ in a child process (solc is synchronous and would stall the caller). */
export async function ensureArtifacts (): Promise<void> {
  const marker = join(ARTIFACTS_DIR, STAMP)
  if (existsSync(marker) && (await stat(marker)).mtimeMs >= await sourcesMtime()) return
  await promisify(execFile)(process.execPath, [join(ROOT, 'contracts', 'build.ts')], { cwd: ROOT })
}

async function artifact (name: string): Promise<{ abi: any[], bytecode: string }> {
  await ensureArtifacts()
  return JSON.parse(await readFile(join(ARTIFACTS_DIR, `${name}.json`), 'utf8'))
}

async function deployOne (name: string, signer: Signer, args: unknown[]): Promise<any> {
  const { abi, bytecode } = await artifact(name)
  const contract = await new ContractFactory(abi, bytecode, signer).deploy(...args)
  await contract.waitForDeployment()
  return contract
}

/** Deploys PinboxToken and PinboxStorage with `admin` as admin of both. */
export async function deployPinbox (admin: Signer, config: DeployConfig = DEV_DEPLOY): Promise<Deployment> {
  const adminAddress = await admin.getAddress()
  // counts nonces locally: a provider's cached transaction count would repeat the first one
  const signer = new NonceManager(admin)
  const token = await deployOne('PinboxToken', signer, ['Pinbox', 'PIN', parseEther('1000000000'), adminAddress])
  const storage = await deployOne('PinboxStorage', signer, [await token.getAddress(), adminAddress, config])
  return { token: await token.getAddress(), storage: await storage.getAddress() }
}

export interface DevChainOptions {
  repoPath: string
  /** The node's libp2p peer id (multihash bytes) and a signer for the join binding. */
  peer: { id: Uint8Array, sign(data: Uint8Array): Promise<Uint8Array> }
  env?: Record<string, string | undefined>
  /** Seconds per block once set up; default 1. */
  blockTime?: number
  deploy?: DeployConfig
  /** Kill anvil when this process dies (for a daemon's child chain). */
  dieWithParent?: boolean
  scryptN?: number
}

export interface DevChain {
  anvil: AnvilProcess
  settings: ChainSettings & { poolId: number }
  /** Where the dev keystores' password is kept, when it was not given by the environment. */
  passwordFile?: string
  stop(): Promise<void>
}

/** The wallet password: PINBOX_WALLET_PASSWORD, else a random one kept in the keystore folder. */
async function devPassword (repoPath: string, env: Record<string, string | undefined>): Promise<{ password: string, file?: string }> {
  const fromEnv = env[PASSWORD_ENV]
  if (fromEnv != null && fromEnv !== '') return { password: fromEnv }
  const file = join(repoPath, KEYSTORE_DIR, DEV_PASSWORD_FILE)
  try {
    return { password: (await readFile(file, 'utf8')).trim(), file }
  } catch {
    await mkdir(join(repoPath, KEYSTORE_DIR), { recursive: true, mode: 0o700 })
    const password = hexlify(randomBytes(16)).slice(2)
    await atomicWriteFile(file, password + '\n', { mode: 0o600 })
    return { password, file }
  }
}

export async function startDevChain (opts: DevChainOptions): Promise<DevChain> {
  const env = opts.env ?? process.env
  const chainDir = join(opts.repoPath, 'chain')
  await mkdir(chainDir, { recursive: true })
  const anvil = await spawnAnvil({ stateFile: join(chainDir, 'state.json'), dieWithParent: opts.dieWithParent ?? true })
  try {
    const chainId = Number(anvil.chainId)
    const provider = new JsonRpcProvider(anvil.rpcUrl, chainId, { staticNetwork: true, pollingInterval: 100, cacheTimeout: -1 })
    try {
      const admin = HDNodeWallet.fromPhrase(ANVIL_MNEMONIC, undefined, "m/44'/60'/0'/0/0").connect(provider)
      const cfg = await loadConfig(opts.repoPath)
      const previous = cfg.chain
      let deployment: Deployment | undefined
      if (previous.storage != null && previous.token != null && previous.chainId === chainId &&
        await provider.getCode(previous.storage) !== '0x') {
        deployment = { token: previous.token, storage: previous.storage }
      }
      deployment ??= await deployPinbox(admin, opts.deploy ?? DEV_DEPLOY)
      const client = createChainClient({ rpcUrl: anvil.rpcUrl, chainId, ...deployment }, { pollingIntervalMs: 100 })
      try {
        await client.check()
        const token = client.tokenAs(admin)
        const storage = client.storageAs(admin)
        const wait = async (p: Promise<any>): Promise<any> => await (await p).wait()

        const { password, file } = await devPassword(opts.repoPath, env)
        if (!await hasWallet(opts.repoPath, 'owner') && !await hasWallet(opts.repoPath, 'operator')) {
          await createWallets(opts.repoPath, password, undefined, opts.scryptN == null ? {} : { scryptN: opts.scryptN })
        }
        const owner = (await unlockWallet(opts.repoPath, 'owner', password)).connect(provider)
        const operator = (await unlockWallet(opts.repoPath, 'operator', password)).connect(provider)

        let poolId = Number(await storage.poolCount())
        if (poolId === 0) {
          await wait(storage.createPool(DEV_POOL.name, DEV_POOL.stake, DEV_POOL.pricePerGiBEpoch))
          poolId = 1
          const reserve = parseEther('10000000')
          await wait(token.mint(admin.address, reserve))
          await wait(token.approve(deployment.storage, reserve))
          await wait(storage.fundReserve(reserve))
        }
        for (const address of [owner.address, operator.address]) {
          if (await provider.getBalance(address) < parseEther('1')) {
            await anvil.rpc('anvil_setBalance', [address, '0x' + parseEther('100').toString(16)])
          }
        }
        if (await client.token.balanceOf(owner.address) < parseEther('10000')) {
          await wait(token.mint(owner.address, parseEther('100000')))
        }
        const member = await client.storage.getMember(operator.address)
        if (member.owner === '0x0000000000000000000000000000000000000000') {
          const peerId = opts.peer.id
          const digest: string = await client.storage.joinDigest(poolId, owner.address, operator.address, peerId)
          const domain = { name: 'PinboxStorage', version: '1', chainId, verifyingContract: deployment.storage }
          const types = {
            Join: [{ name: 'poolId', type: 'uint256' }, { name: 'owner', type: 'address' }, { name: 'operator', type: 'address' }, { name: 'peerId', type: 'bytes' }]
          }
          const operatorSig = await operator.signTypedData(domain, types, { poolId, owner: owner.address, operator: operator.address, peerId })
          const peerSig = await opts.peer.sign(getBytes(digest))
          await wait(client.tokenAs(owner).approve(deployment.storage, DEV_POOL.stake))
          await wait(client.storageAs(owner).join(poolId, operator.address, peerId, operatorSig, peerSig))
        }
        // set-up ran on automine; from here on blocks come at a steady pace, like a real chain
        await anvil.rpc('evm_setIntervalMining', [opts.blockTime ?? 1])

        const settings = { rpcUrl: anvil.rpcUrl, chainId, ...deployment, poolId }
        const latest = await loadConfig(opts.repoPath)
        await saveConfig(opts.repoPath, {
          ...latest,
          chain: { ...latest.chain, ...settings, ...(file == null ? {} : { passwordFile: file }) }
        })
        return { anvil, settings, ...(file == null ? {} : { passwordFile: file }), stop: async () => { await anvil.stop() } }
      } finally {
        client.close()
      }
    } finally {
      provider.destroy()
    }
  } catch (err) {
    await anvil.stop()
    throw err
  }
}

/** The chain settings as `pinbox chain dev` prints them. */
export function devChainSummary (chain: DevChain): { rpcUrl: string, chainId: number, token: string, storage: string } {
  const { rpcUrl, chainId, token, storage } = chain.settings
  return { rpcUrl, chainId, token, storage }
}
