/**
 * The rewards part of a daemon, as node.ts composes it: with a chain configured it checks
 * the chain before the API opens (a wrong chain id or contract address refuses the start;
 * an endpoint that is down does not) and then runs the rewards service; with `chain.dev` it
 * starts a local dev chain in the background after the API is up, and stops it on exit.
 */
import { readFile } from 'node:fs/promises'
import { parseDuration } from '../store/config.ts'
import type { PinboxConfig } from '../store/config.ts'
import type { ChainSettings } from './chain.ts'
import type { DevChain } from './dev-chain.ts'
import { ChainIdMismatchError, ContractNotFoundError } from './errors.ts'
import type { RewardsComponents, RewardsLogger, RewardsService } from './service.ts'

// ethers, the contract artifacts and the rewards service are loaded only when a chain is
// configured: a box without one should not pay their start-up time and memory.

export interface NodeRewardsComponents extends Omit<RewardsComponents, 'log'> {
  config: PinboxConfig['chain']
  env?: Record<string, string | undefined>
  log?: RewardsLogger
}

export interface NodeRewards {
  /** Checks a configured chain (throws on a wrong chain id or address) and starts the service. */
  start(): Promise<void>
  stop(): Promise<void>
  service(): RewardsService | undefined
}

/** Writes warnings and errors as one line each to stderr; never a key (nothing here holds one). */
export function stderrLogger (): RewardsLogger {
  const line = (level: string, fields: object, msg: string): void => {
    process.stderr.write(`rewards ${level}: ${msg} ${JSON.stringify(fields, (_k, v: unknown) => typeof v === 'bigint' ? v.toString() : v)}\n`)
  }
  return {
    info: (fields, msg) => { line('info', fields, msg) },
    warn: (fields, msg) => { line('warn', fields, msg) },
    error: (fields, msg) => { line('error', fields, msg) }
  }
}

const PRECHECK_MS = 2000

export function settingsOf (config: PinboxConfig['chain']): ChainSettings | undefined {
  const { rpcUrl, chainId, storage, token } = config
  if (rpcUrl == null || chainId == null || storage == null || token == null) return undefined
  return { rpcUrl, chainId, storage, token }
}

export function createNodeRewards (components: NodeRewardsComponents): NodeRewards {
  const env = components.env ?? process.env
  const log = components.log
  let service: RewardsService | undefined
  let dev: Promise<DevChain | undefined> | undefined
  let stopped = false

  const password = (config: PinboxConfig['chain']) => async (): Promise<string | undefined> => {
    if (config.passwordFile != null) return (await readFile(config.passwordFile, 'utf8')).split(/\r?\n/)[0]
    const { PASSWORD_ENV } = await import('./wallet.ts')
    const fromEnv = env[PASSWORD_ENV]
    return fromEnv == null || fromEnv === '' ? undefined : fromEnv
  }

  async function run (config: PinboxConfig['chain'], settings: ChainSettings): Promise<void> {
    const [{ createRewards }, { parseEther }] = await Promise.all([import('./service.ts'), import('ethers')])
    const rewards = createRewards({ ...components, ...(log == null ? {} : { log }) }, {
      chain: settings,
      ...(config.poolId == null ? {} : { poolId: config.poolId }),
      password: password(config),
      pollIntervalMs: parseDuration(config.pollInterval),
      claimIntervalMs: parseDuration(config.claimInterval),
      lowBalanceWei: parseEther(config.lowBalance),
      reportFaults: config.reportFaults
    })
    service = rewards
    await rewards.start()
  }

  return {
    async start () {
      const config = components.config
      if (config.dev && env.PINBOX_CHAIN_DEV !== '0') {
        dev = (async () => {
          const [{ startDevChain }, { formatEther, parseEther }] = await Promise.all([import('./dev-chain.ts'), import('ethers')])
          const scryptN = env.PINBOX_TEST_SCRYPT_N
          const chain = await startDevChain({ repoPath: components.repoPath, peer: components.peer, env, ...(scryptN == null ? {} : { scryptN: Number(scryptN) }) })
          if (stopped) {
            await chain.stop()
            return undefined
          }
          log?.info({ ...chain.settings, threshold: formatEther(parseEther(config.lowBalance)) }, 'dev chain running')
          const passwordFile = chain.passwordFile ?? config.passwordFile
          await run({ ...config, ...chain.settings, ...(passwordFile == null ? {} : { passwordFile }) }, chain.settings)
          return chain
        })().catch((err: unknown) => {
          log?.error({ err: err instanceof Error ? err.message : String(err) }, 'the dev chain did not start')
          return undefined
        })
        return
      }
      const settings = settingsOf(config)
      if (settings == null) return
      const { createChainClient } = await import('./chain.ts')
      const client = createChainClient(settings)
      try {
        await Promise.race([
          client.check(),
          new Promise((resolve) => setTimeout(resolve, PRECHECK_MS).unref())
        ])
      } catch (err) {
        // a reachable endpoint with the wrong chain or contracts is a config error; a down one is not
        if (err instanceof ChainIdMismatchError || err instanceof ContractNotFoundError) throw err
      } finally {
        client.close()
      }
      await run(config, settings)
    },

    async stop () {
      stopped = true
      await service?.stop()
      service = undefined
      const chain = await dev
      dev = undefined
      await chain?.stop()
    },

    service: () => service
  }
}
