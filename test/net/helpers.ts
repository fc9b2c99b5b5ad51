import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createNode } from '../../src/node.ts'
import { defaultConfig } from '../../src/store/config.ts'
import { initRepo, saveConfig } from '../../src/store/repo.ts'
import type { PinboxNode } from '../../src/node.ts'
import type { PinboxConfig } from '../../src/store/config.ts'

export interface TestNode {
  node: PinboxNode
  repo: string
  token: string
  apiUrl: string
  peerId: string
  /** The node's loopback TCP address with /p2p/. */
  addr: string
  /** POST to the node's RPC API; resolves to the parsed JSON (or the text for ndjson). */
  rpc(path: string, query?: Record<string, string | string[]>, init?: CallInit): Promise<{ status: number, body: any, text: string }>
}

export interface CallInit {
  signal?: AbortSignal
  /** A multipart body (add, dag import). */
  form?: FormData
}

/** POST `path` with `query` (repeated keys for arrays) and the bearer token. */
export async function callApi (apiUrl: string, token: string, path: string, query: Record<string, string | string[]> = {}, init: CallInit = {}): Promise<Response> {
  const qs = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) {
    for (const one of Array.isArray(v) ? v : [v]) qs.append(k, one)
  }
  return await fetch(`${apiUrl}/${path}?${qs.toString()}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
    ...(init.signal == null ? {} : { signal: init.signal }),
    ...(init.form == null ? {} : { body: init.form })
  })
}

/**
 * Loopback only, mDNS off, no bootstrap peers, API on a free port; `edit` changes the rest
 * (and may write into the fresh repo before the node opens it).
 */
export async function startNode (edit: (cfg: PinboxConfig, repo: string) => void | Promise<void> = () => {}, dirs: string[] = []): Promise<TestNode> {
  const repo = await mkdtemp(join(tmpdir(), 'pinbox-net-'))
  dirs.push(repo)
  await initRepo(repo)
  const cfg = defaultConfig()
  cfg.api.port = 0
  cfg.swarm.listen = ['/ip4/127.0.0.1/tcp/0']
  cfg.swarm.mdns = false
  cfg.swarm.bootstrap = []
  cfg.swarm.autonat = false
  // these nodes form a pool DHT without naming members (the default runs it only for a pool with members)
  cfg.dht.pool.enabled = true
  await edit(cfg, repo)
  await saveConfig(repo, cfg)
  const node = createNode({ repoPath: repo })
  await node.start()
  const info = node.info()
  const token = (await readFile(join(repo, 'api.token'), 'utf8')).trim()
  const addr = info.addresses.find(a => a.startsWith('/ip4/127.0.0.1/tcp/')) ?? ''
  return {
    node,
    repo,
    token,
    apiUrl: info.apiUrl,
    peerId: info.peerId,
    addr,
    async rpc (path, query = {}, init = {}) {
      const res = await callApi(info.apiUrl, token, path, query, init)
      const text = await res.text()
      let body: any
      try { body = JSON.parse(text) } catch { body = undefined }
      return { status: res.status, body, text }
    }
  }
}

export async function stopAll (nodes: TestNode[], dirs: string[]): Promise<void> {
  await Promise.allSettled(nodes.map(async n => { await n.node.stop() }))
  nodes.length = 0
  await Promise.allSettled(dirs.map(async d => { await rm(d, { recursive: true, force: true }) }))
  dirs.length = 0
}

/**
 * Adds `bytes` as one file (CIDv1, raw leaves, plus `query`, e.g. a chunker) through the RPC
 * API; fails unless the API answers 200. Returns the root CID.
 */
export async function addFile (node: Pick<TestNode, 'apiUrl' | 'token'>, bytes: Uint8Array, query: Record<string, string> = {}): Promise<string> {
  const form = new FormData()
  form.append('file', new Blob([bytes]), 'data.bin')
  const res = await callApi(node.apiUrl, node.token, 'add', { 'cid-version': '1', 'raw-leaves': 'true', ...query }, { form })
  const text = await res.text()
  if (res.status !== 200) throw new Error(`add: ${res.status} ${text}`)
  const lines = text.trim().split('\n').map(l => JSON.parse(l))
  return lines[lines.length - 1].Hash
}

/** Polls `check` every 100 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function until (what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}
