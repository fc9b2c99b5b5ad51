/**
 * A real local chain: anvil from the npm package `@foundry-rs/anvil` on 127.0.0.1, as the
 * tests and `pinbox chain dev` run it.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { createRequire } from 'node:module'
import { existsSync } from 'node:fs'
import { join, dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ANVIL_MNEMONIC = 'test test test test test test test test test test test junk'
export const ANVIL_HARDFORK = 'cancun'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

export interface AnvilProcess {
  rpcUrl: string
  chainId: bigint
  /** JSON-RPC call to the node (anvil_* and evm_* included). */
  rpc: (method: string, params?: unknown[]) => Promise<unknown>
  stop: () => Promise<void>
}

export interface SpawnAnvilOptions {
  port?: number
  blockTime?: number
  accounts?: number
  /** anvil `--state`: loaded at start when present, written on exit. */
  stateFile?: string
  /**
   * Runs anvil under a shell that kills it when this process's end of its stdin closes, so a
   * daemon killed with SIGKILL leaves no chain behind (Node has no parent-death signal).
   */
  dieWithParent?: boolean
  chainId?: number
  /** EVM rules; default ANVIL_HARDFORK, the compiler's target. */
  hardfork?: string
}

export function anvilBinary (): string {
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

export async function freePort (): Promise<number> {
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

export async function jsonRpc (url: string, method: string, params: unknown[] = []): Promise<unknown> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params })
  })
  const body = await res.json() as { result?: unknown, error?: { message: string } }
  if (body.error != null) throw new Error(`${method}: ${body.error.message}`)
  return body.result
}

async function kill (child: ChildProcess): Promise<void> {
  if (child.exitCode != null || child.signalCode != null) return
  await new Promise<void>(resolve => {
    child.once('exit', () => { resolve() })
    // closing stdin ends the watchdog shell, which stops anvil (and lets it write its state)
    child.stdin?.end()
    child.kill('SIGTERM')
    setTimeout(() => { child.kill('SIGKILL') }, 5000).unref()
  })
}

async function waitReady (url: string, child: ChildProcess, stderr: () => string): Promise<bigint> {
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline) {
    if (child.exitCode != null || child.signalCode != null) throw new Error(`anvil exited (${child.exitCode ?? child.signalCode}): ${stderr()}`)
    try {
      return BigInt(await jsonRpc(url, 'eth_chainId') as string)
    } catch {
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
  throw new Error(`anvil did not answer on ${url}: ${stderr()}`)
}

// The shell waits on its stdin (the parent's pipe); EOF means the parent is gone or stopping.
const WATCHDOG = '"$0" "$@" & pid=$!; trap \'kill $pid; wait $pid; exit 0\' TERM INT; read _ignored; kill $pid; wait $pid'

/** Starts anvil on loopback and waits until it answers; retries on a port taken meanwhile. */
export async function spawnAnvil (opts: SpawnAnvilOptions = {}): Promise<AnvilProcess> {
  let lastErr: unknown
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = opts.port ?? await freePort()
    const args = ['--host', '127.0.0.1', '--port', String(port), '--hardfork', opts.hardfork ?? ANVIL_HARDFORK,
      '--accounts', String(opts.accounts ?? 10), '--mnemonic', ANVIL_MNEMONIC, '--silent']
    if (opts.blockTime != null) args.push('--block-time', String(opts.blockTime))
    if (opts.stateFile != null) args.push('--state', opts.stateFile)
    if (opts.chainId != null) args.push('--chain-id', String(opts.chainId))
    const child = opts.dieWithParent === true
      ? spawn('/bin/sh', ['-c', WATCHDOG, anvilBinary(), ...args], { stdio: ['pipe', 'ignore', 'pipe'], detached: false })
      : spawn(anvilBinary(), args, { stdio: ['ignore', 'ignore', 'pipe'], detached: false })
    let stderr = ''
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
    const rpcUrl = `http://127.0.0.1:${port}`
    try {
      const chainId = await waitReady(rpcUrl, child, () => stderr)
      return {
        rpcUrl,
        chainId,
        rpc: async (method, params = []) => await jsonRpc(rpcUrl, method, params),
        stop: async () => { await kill(child) }
      }
    } catch (err) {
      lastErr = err
      await kill(child)
      if (opts.port != null) break
    }
  }
  throw lastErr
}
