import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { jsonRpc } from '../../src/rewards/anvil.ts'
import { createWallets } from '../../src/rewards/wallet.ts'
import { callApi, startNode } from '../net/helpers.ts'
import type { PinboxNode } from '../../src/node.ts'
import type { PinboxConfig } from '../../src/store/config.ts'

/** Small scrypt cost: key derivation is not what these tests measure. */
export const TEST_SCRYPT_N = 1024
export const PASSWORD = 'correct horse battery staple'

export interface RewardsTestNode {
  node: PinboxNode
  repo: string
  apiUrl: string
  owner: string
  operator: string
  rpc<T = any>(path: string, query?: Record<string, string | string[]>, body?: { form: FormData }): Promise<{ status: number, body: T, text: string }>
  raw(path: string, query?: Record<string, string | string[]>): Promise<Uint8Array>
}

/** A node on loopback with owner and operator keystores and the given chain section. */
export async function startRewardsNode (chain: Partial<PinboxConfig['chain']>, dirs: string[]): Promise<RewardsTestNode> {
  let keys: { owner?: string, operator?: string } = {}
  const n = await startNode(async (cfg, repo) => {
    keys = await createWallets(repo, PASSWORD, undefined, { scryptN: TEST_SCRYPT_N })
    const passwordFile = join(repo, 'password.txt')
    await writeFile(passwordFile, PASSWORD + '\n', { mode: 0o600 })
    cfg.chain = { ...cfg.chain, passwordFile, ...chain }
  }, dirs)
  return {
    node: n.node,
    repo: n.repo,
    apiUrl: n.apiUrl,
    owner: keys.owner ?? '',
    operator: keys.operator ?? '',
    async rpc (path, query = {}, body) {
      return await n.rpc(path, query, body ?? {})
    },
    async raw (path, query = {}) {
      const res = await callApi(n.apiUrl, n.token, path, query)
      if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`)
      return new Uint8Array(await res.arrayBuffer())
    }
  }
}

export async function waitFor<T> (what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000, stepMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const v = await fn()
      if (v !== undefined && v !== false) return v
    } catch (err) {
      last = err
    }
    await new Promise(resolve => setTimeout(resolve, stepMs))
  }
  throw new Error(`timed out waiting for ${what}${last != null ? `: ${String(last)}` : ''}`)
}

/** True when nothing answers JSON-RPC at `rpcUrl` (the chain is gone). */
export async function refused (rpcUrl: string): Promise<boolean> {
  try {
    await jsonRpc(rpcUrl, 'eth_chainId')
    return false
  } catch {
    return true
  }
}
