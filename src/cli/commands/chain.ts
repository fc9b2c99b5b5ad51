import type { Command } from 'commander'
import { action } from '../command.ts'
import type { Runtime } from '../command.ts'
import { example } from '../help.ts'
import { output, printOutput } from '../printer.ts'

export interface ChainDevResult {
  rpcUrl: string
  chainId: number
  token: string
  storage: string
}

export function registerChain (program: Command, rt: Runtime): void {
  const chain = program.command('chain')
    .description('the chain rewards are paid on')
  example(chain, 'pinbox chain dev')

  const dev = chain.command('dev')
    .description('run a local dev chain (anvil, loopback, a block a second) with the contracts deployed, this node\'s keys funded and joined, and its settings in the config; runs until SIGINT or SIGTERM')
    .action(action(rt, async (ctx) => {
      const { startDevChain, devChainSummary } = await import('../../rewards/dev-chain.ts')
      const { readFile } = await import('node:fs/promises')
      const { join } = await import('node:path')
      const { privateKeyFromProtobuf } = await import('@libp2p/crypto/keys')
      const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
      const { loadConfig, saveConfig } = await import('../../store/repo.ts')
      const key = privateKeyFromProtobuf(await readFile(join(ctx.repoPath, 'identity.key')))
      const running = await startDevChain({
        repoPath: ctx.repoPath,
        peer: { id: peerIdFromPrivateKey(key).toMultihash().bytes, sign: async (d) => await key.sign(d) },
        env: ctx.io.env,
        dieWithParent: true,
        ...(ctx.io.env.PINBOX_TEST_SCRYPT_N == null ? {} : { scryptN: Number(ctx.io.env.PINBOX_TEST_SCRYPT_N) })
      })
      // this chain runs outside any daemon: a daemon started now connects to it instead of its own
      const cfg = await loadConfig(ctx.repoPath)
      await saveConfig(ctx.repoPath, { ...cfg, chain: { ...cfg.chain, dev: false } })
      printOutput(rt.io, ctx.json, output<ChainDevResult>(devChainSummary(running), (d) => [
        `dev chain ${d.chainId} at ${d.rpcUrl}`,
        `token   ${d.token}`,
        `storage ${d.storage}`,
        'chain settings written to the config; stop with Ctrl-C'
      ]))
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => { resolve() })
        process.once('SIGTERM', () => { resolve() })
      })
      await running.stop()
    }))
  example(dev, 'pinbox chain dev', 'pinbox --json chain dev')
}
