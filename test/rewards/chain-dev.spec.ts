/**
 * `pinbox chain dev` as a real process: starts anvil on loopback, deploys, funds and joins
 * this node's keys, writes the chain settings into the config, prints them, and never leaves
 * anvil behind (SIGTERM, and SIGKILL of the CLI too).
 */
import { afterAll, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Contract, JsonRpcProvider } from 'ethers'
import { STORAGE_ABI } from '../../src/rewards/abi.ts'
import { walletAddresses } from '../../src/rewards/wallet.ts'
import { initRepo } from '../../src/store/repo.ts'
import { PINBOX_BIN } from '../helpers/daemon.ts'
import { TEST_SCRYPT_N, refused, waitFor } from './helpers.ts'

interface Running {
  child: ChildProcessWithoutNullStreams
  summary: { rpcUrl: string, chainId: number, token: string, storage: string }
  exited: Promise<number | null>
}

const children: ChildProcessWithoutNullStreams[] = []

async function chainDev (repo: string): Promise<Running> {
  const env: Record<string, string> = { ...process.env as Record<string, string>, PINBOX_TEST_SCRYPT_N: String(TEST_SCRYPT_N) }
  delete env.PINBOX_WALLET_PASSWORD
  const child = spawn(process.execPath, [PINBOX_BIN, '--repo', repo, '--json', 'chain', 'dev'], { env, stdio: ['pipe', 'pipe', 'pipe'] })
  children.push(child)
  const exited = new Promise<number | null>((resolve) => { child.once('exit', (code) => { resolve(code) }) })
  let out = ''
  let err = ''
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const summary = await new Promise<Running['summary']>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`chain dev printed nothing: ${err}`)) }, 90_000)
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const line = out.split('\n').find((l) => l.trim().startsWith('{'))
      if (line != null && out.includes('\n')) {
        clearTimeout(timer)
        resolve(JSON.parse(line))
      }
    })
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`chain dev exited ${code}: ${err}`)) })
  })
  return { child, summary, exited }
}

describe('pinbox chain dev', () => {
  const dirs: string[] = []
  afterAll(async () => {
    for (const c of children) if (c.exitCode == null && c.signalCode == null) c.kill('SIGKILL')
    for (const dir of dirs) await rm(dir, { recursive: true, force: true })
  })

  it('deploys, funds and joins the node, writes the config, keeps state, and stops anvil on SIGTERM and SIGKILL', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pinbox-chaindev-'))
    dirs.push(dir)
    const repo = join(dir, 'repo')
    await initRepo(repo)

    const first = await chainDev(repo)
    const { rpcUrl, chainId, token, storage } = first.summary
    expect(rpcUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(chainId).toBe(31337)
    const cfg = JSON.parse(await readFile(join(repo, 'config.json'), 'utf8'))
    expect(cfg.chain).toMatchObject({ rpcUrl, chainId, token, storage, poolId: 1, dev: false })
    expect(existsSync(cfg.chain.passwordFile)).toBe(true)

    const keys = await walletAddresses(repo)
    const provider = new JsonRpcProvider(rpcUrl, chainId, { staticNetwork: true, cacheTimeout: -1 })
    try {
      const contract: any = new Contract(storage, STORAGE_ABI as unknown as string[], provider)
      expect(await provider.getCode(storage)).not.toBe('0x')
      const member = await contract.getMember(keys.operator)
      expect(member.owner).toBe(keys.owner)
      expect(Number(member.poolId)).toBe(1)
      expect(await provider.getBalance(keys.operator ?? '')).toBeGreaterThan(0n)
      // a block a second with no transactions: proofs have a clock to run on
      const start = await provider.getBlockNumber()
      await waitFor('a new block', async () => await provider.getBlockNumber() > start, 5000)
    } finally {
      provider.destroy()
    }

    first.child.kill('SIGTERM')
    expect(await first.exited).toBe(0)
    expect(await refused(rpcUrl)).toBe(true)
    expect(existsSync(join(repo, 'chain', 'state.json'))).toBe(true)

    // restarted, the chain keeps its contracts; a CLI killed with SIGKILL takes anvil with it
    const second = await chainDev(repo)
    expect(second.summary.storage).toBe(storage)
    second.child.kill('SIGKILL')
    await second.exited
    await waitFor('anvil gone after SIGKILL', async () => await refused(second.summary.rpcUrl), 10_000)
  }, 180_000)
})
