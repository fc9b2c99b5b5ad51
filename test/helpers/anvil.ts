/**
 * Test helper: a real anvil chain on 127.0.0.1 (same hardfork as the compiler) and deploys
 * from artifacts/, which it (re)builds with solc when missing or older than the sources.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { createRequire } from 'node:module'
import { existsSync } from 'node:fs'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join, dirname } from 'node:path'
import { ContractFactory, HDNodeWallet, Interface, JsonRpcProvider, Wallet } from 'ethers'
import type { Signer } from 'ethers'
import { ARTIFACTS_DIR, ROOT, EVM_VERSION, STAMP, buildContracts, sourcesMtime } from '../../contracts/build.ts'

export const ANVIL_MNEMONIC = 'test test test test test test test test test test test junk'

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

function anvilBinary (): string {
  const require = createRequire(import.meta.url)
  try {
    // the platform package holds the real binary; the npm bin is a node wrapper around it
    const pkg = require.resolve(`@foundry-rs/anvil-${process.platform}-${process.arch === 'x64' ? 'amd64' : process.arch}/package.json`)
    const bin = join(dirname(pkg), 'bin', process.platform === 'win32' ? 'anvil.exe' : 'anvil')
    if (existsSync(bin)) return bin
  } catch {
    // no platform package: fall back to the npm wrapper
  }
  return join(ROOT, 'node_modules', '.bin', 'anvil')
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address != null ? address.port : 0
      server.close(() => { resolve(port) })
    })
  })
}

async function rpc (url: string, method: string, params: unknown[] = []): Promise<unknown> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params })
  })
  const body = await res.json() as { result?: unknown, error?: { message: string } }
  if (body.error != null) throw new Error(`${method}: ${body.error.message}`)
  return body.result
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

/** Starts anvil on a free loopback port and waits until it answers JSON-RPC. */
export async function startAnvil (opts: StartAnvilOptions = {}): Promise<Anvil> {
  const hardfork = opts.hardfork ?? EVM_VERSION
  const count = opts.accounts ?? 10
  let lastErr: unknown
  // a port picked free can be taken before anvil binds it: retry with a new one
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const args = ['--host', '127.0.0.1', '--port', String(port), '--hardfork', hardfork,
      '--accounts', String(count), '--mnemonic', ANVIL_MNEMONIC, '--silent']
    if (opts.blockTime != null) args.push('--block-time', String(opts.blockTime))
    const child = spawn(anvilBinary(), args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
    const rpcUrl = `http://127.0.0.1:${port}`
    try {
      const chainId = await waitReady(rpcUrl, child, () => stderr)
      return makeAnvil(rpcUrl, chainId, child, count)
    } catch (err) {
      lastErr = err
      await kill(child)
    }
  }
  throw lastErr
}

async function waitReady (url: string, child: ChildProcess, stderr: () => string): Promise<bigint> {
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    if (child.exitCode != null) throw new Error(`anvil exited with ${child.exitCode}: ${stderr()}`)
    try {
      return BigInt(await rpc(url, 'eth_chainId') as string)
    } catch {
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
  throw new Error(`anvil did not answer on ${url}: ${stderr()}`)
}

async function kill (child: ChildProcess): Promise<void> {
  if (child.exitCode != null || child.signalCode != null) return
  await new Promise<void>(resolve => {
    child.once('exit', () => { resolve() })
    child.kill('SIGTERM')
    setTimeout(() => { child.kill('SIGKILL') }, 2000).unref()
  })
}

function makeAnvil (rpcUrl: string, chainId: bigint, child: ChildProcess, count: number): Anvil {
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
    mine: async (blocks = 1) => { await rpc(rpcUrl, 'anvil_mine', [`0x${blocks.toString(16)}`]) },
    blockNumber: async () => Number(BigInt(await rpc(rpcUrl, 'eth_blockNumber') as string)),
    snapshot: async () => await rpc(rpcUrl, 'evm_snapshot') as string,
    revert: async (id) => {
      if (await rpc(rpcUrl, 'evm_revert', [id]) !== true) throw new Error(`evm_revert ${id} failed`)
    },
    stop: async () => {
      provider.destroy()
      await kill(child)
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
