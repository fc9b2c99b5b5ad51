import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createNode } from '../../src/node.ts'
import { defaultConfig } from '../../src/store/config.ts'
import { initRepo, saveConfig } from '../../src/store/repo.ts'
import { createWallets } from '../../src/rewards/wallet.ts'
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

async function call (apiUrl: string, token: string, path: string, query: Record<string, string | string[]>, body?: { form: FormData }): Promise<Response> {
  const qs = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) {
    for (const one of Array.isArray(v) ? v : [v]) qs.append(k, one)
  }
  return await fetch(`${apiUrl}/${path}?${qs.toString()}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
    ...(body == null ? {} : { body: body.form })
  })
}

/** A node on loopback with owner and operator keystores and the given chain section. */
export async function startRewardsNode (chain: Partial<PinboxConfig['chain']>, dirs: string[]): Promise<RewardsTestNode> {
  const repo = await mkdtemp(join(tmpdir(), 'pinbox-rewards-'))
  dirs.push(repo)
  await initRepo(repo)
  const keys = await createWallets(repo, PASSWORD, undefined, { scryptN: TEST_SCRYPT_N })
  const passwordFile = join(repo, 'password.txt')
  await writeFile(passwordFile, PASSWORD + '\n', { mode: 0o600 })
  const cfg = defaultConfig()
  cfg.api.port = 0
  cfg.swarm.listen = ['/ip4/127.0.0.1/tcp/0']
  cfg.swarm.mdns = false
  cfg.swarm.bootstrap = []
  cfg.swarm.autonat = false
  cfg.chain = { ...cfg.chain, passwordFile, ...chain }
  await saveConfig(repo, cfg)
  const node = createNode({ repoPath: repo })
  await node.start()
  const apiUrl = node.info().apiUrl
  const token = (await readFile(join(repo, 'api.token'), 'utf8')).trim()
  return {
    node,
    repo,
    apiUrl,
    owner: keys.owner ?? '',
    operator: keys.operator ?? '',
    async rpc (path, query = {}, body) {
      const res = await call(apiUrl, token, path, query, body)
      const text = await res.text()
      let parsed: any
      try { parsed = JSON.parse(text) } catch { parsed = undefined }
      return { status: res.status, body: parsed, text }
    },
    async raw (path, query = {}) {
      const res = await call(apiUrl, token, path, query)
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
