/**
 * Test helper: a real anvil chain on 127.0.0.1 (same hardfork as the compiler) and deploys
 * from artifacts/, which it (re)builds with solc when missing or older than the sources.
 */
import { existsSync } from 'node:fs'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { ContractFactory, HDNodeWallet, Interface, JsonRpcProvider, Wallet } from 'ethers'
import type { Signer } from 'ethers'
import { ARTIFACTS_DIR, EVM_VERSION, STAMP, buildContracts, sourcesMtime } from '../../contracts/build.ts'
import { ANVIL_MNEMONIC, jsonRpc, spawnAnvil } from '../../src/rewards/anvil.ts'
import type { AnvilProcess } from '../../src/rewards/anvil.ts'

export interface Anvil {
  rpcUrl: string
  chainId: bigint
  /** private keys of anvil's default mnemonic, in account order */
  accounts: string[]
  provider: JsonRpcProvider
  /** a Wallet for account i, connected to the chain */
  wallet: (i: number) => Wallet
  mine: (blocks?: number) => Promise<void>
  blockNumber: () => Promise<number>
  snapshot: () => Promise<string>
  revert: (id: string) => Promise<void>
  stop: () => Promise<void>
}

export interface StartAnvilOptions {
  hardfork?: string
  blockTime?: number
  accounts?: number
}

const keyCache = new Map<number, string[]>()

function defaultKeys (n: number): string[] {
  const cached = keyCache.get(n)
  if (cached != null) return cached
  const keys: string[] = []
  for (let i = 0; i < n; i++) {
    keys.push(HDNodeWallet.fromPhrase(ANVIL_MNEMONIC, undefined, `m/44'/60'/0'/0/${i}`).privateKey)
  }
  keyCache.set(n, keys)
  return keys
}

/** Starts anvil on a free loopback port (the daemon's own starter) with ethers conveniences on top. */
export async function startAnvil (opts: StartAnvilOptions = {}): Promise<Anvil> {
  const count = opts.accounts ?? 10
  const chain = await spawnAnvil({
    hardfork: opts.hardfork ?? EVM_VERSION,
    accounts: count,
    ...(opts.blockTime == null ? {} : { blockTime: opts.blockTime })
  })
  return makeAnvil(chain, count)
}

function makeAnvil (chain: AnvilProcess, count: number): Anvil {
  const { rpcUrl, chainId } = chain
  const provider = new JsonRpcProvider(rpcUrl, chainId, { staticNetwork: true, pollingInterval: 20, cacheTimeout: -1 })
  const accounts = defaultKeys(count)
  return {
    rpcUrl,
    chainId,
    accounts,
    provider,
    wallet: (i) => {
      const key = accounts[i]
      if (key == null) throw new Error(`no anvil account ${i}`)
      return new Wallet(key, provider)
    },
    mine: async (blocks = 1) => { await jsonRpc(rpcUrl, 'anvil_mine', [`0x${blocks.toString(16)}`]) },
    blockNumber: async () => Number(BigInt(await jsonRpc(rpcUrl, 'eth_blockNumber') as string)),
    snapshot: async () => await jsonRpc(rpcUrl, 'evm_snapshot') as string,
    revert: async (id) => {
      if (await jsonRpc(rpcUrl, 'evm_revert', [id]) !== true) throw new Error(`evm_revert ${id} failed`)
    },
    stop: async () => {
      provider.destroy()
      await chain.stop()
    }
  }
}

let building: Promise<void> | undefined

/** Builds artifacts/ with solc unless every artifact is newer than every source. */
export async function ensureArtifacts (): Promise<void> {
  building ??= (async () => {
    const marker = join(ARTIFACTS_DIR, STAMP)
    const fresh = existsSync(marker) && (await stat(marker)).mtimeMs >= await sourcesMtime()
    if (!fresh) await buildContracts()
  })()
  await building
}

export async function readArtifact (name: string): Promise<{ abi: any[], bytecode: string }> {
  await ensureArtifacts()
  return JSON.parse(await readFile(join(ARTIFACTS_DIR, `${name}.json`), 'utf8'))
}

/**
 * Deploys artifacts/<name>.json with `signer` and waits for it to be mined. Returns an ethers
 * Contract; typed `any` because its methods come from the ABI at run time.
 */
export async function deploy (name: string, signer: Signer, args: unknown[] = []): Promise<any> {
  const { abi, bytecode } = await readArtifact(name)
  const factory = new ContractFactory(abi, bytecode, signer)
  const contract = await factory.deploy(...args)
  await contract.waitForDeployment()
  return contract
}

let errorInterface: Interface | undefined

/** One Interface with the custom errors of every artifact, to decode reverts from any call path. */
async function errorsInterface (): Promise<Interface> {
  if (errorInterface != null) return errorInterface
  await ensureArtifacts()
  const seen = new Set<string>()
  const fragments: any[] = []
  for (const file of await readdir(ARTIFACTS_DIR)) {
    if (!file.endsWith('.json')) continue
    const { abi } = JSON.parse(await readFile(join(ARTIFACTS_DIR, file), 'utf8')) as { abi: any[] }
    for (const f of abi) {
      if (f.type !== 'error') continue
      const key = `${f.name}(${f.inputs.map((i: any) => i.type).join(',')})`
      if (!seen.has(key)) { seen.add(key); fragments.push(f) }
    }
  }
  errorInterface = new Interface(fragments)
  return errorInterface
}

function revertData (err: any): string | undefined {
  for (const candidate of [err?.data, err?.info?.error?.data, err?.error?.data]) {
    if (typeof candidate === 'string' && candidate.startsWith('0x')) return candidate
  }
  return undefined
}

/** Awaits a call or transaction expected to revert with the custom error `name`; returns its args. */
export async function expectRevert (action: Promise<unknown> | (() => Promise<unknown>), name: string): Promise<unknown[]> {
  try {
    const pending = typeof action === 'function' ? action() : action
    const res = await pending as { wait?: () => Promise<unknown> }
    if (typeof res?.wait === 'function') await res.wait()
  } catch (err: any) {
    if (err?.revert?.name === name) return [...err.revert.args]
    const data = revertData(err)
    const decoded = data != null && data.length >= 10 ? (await errorsInterface()).parseError(data) : null
    if (decoded?.name !== name) {
      throw new Error(`expected revert ${name}, got ${decoded?.name ?? err?.shortMessage ?? err?.message}`, { cause: err })
    }
    return [...decoded.args]
  }
  throw new Error(`expected revert ${name}, but it succeeded`)
}
