import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Command } from 'commander'
import type { PinboxConfig } from '../../store/config.ts'
import { RepoNotFoundError } from '../../store/errors.ts'
import { action } from '../command.ts'
import type { Runtime } from '../command.ts'
import { example } from '../help.ts'
import { output, toJson } from '../printer.ts'

// `config` edits the repo's file directly (no daemon needed); a running daemon reads it at start.
// The repo and config modules are loaded on demand: they pull in LevelDB, zod and libp2p's
// crypto, which every other command would pay for at start-up.
async function loadConfig (repoPath: string): Promise<PinboxConfig> {
  try {
    await stat(join(repoPath, 'config.json'))
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') throw new RepoNotFoundError(repoPath)
    throw err
  }
  const repo = await import('../../store/repo.ts')
  return repo.loadConfig(repoPath)
}

async function saveConfig (repoPath: string, cfg: PinboxConfig): Promise<void> {
  const repo = await import('../../store/repo.ts')
  await repo.saveConfig(repoPath, cfg)
}

function showValue (value: unknown): string {
  return typeof value === 'string' ? value : toJson(value, true)
}

export function registerConfig (program: Command, rt: Runtime): void {
  const config = program.command('config')
    .description('read and change the repo\'s config.json (restart the daemon to apply)')
  example(config, 'pinbox config show', 'pinbox config set storage.max 500GB')

  const get = config.command('get')
    .description('print one config value by its dotted key')
    .argument('<key>', 'dotted key, e.g. api.port')
    .action(action(rt, async (ctx, c) => {
      const [key] = c.processedArgs as [string]
      const { getConfigValue } = await import('../../store/config.ts')
      const value = getConfigValue(await loadConfig(ctx.repoPath), key)
      return output({ key, value }, (d) => showValue(d.value))
    }))
  example(get, 'pinbox config get api.port', 'pinbox config get storage')

  const set = config.command('set')
    .description('set one config value (JSON values like 5101, true or ["a"] are parsed; anything else is a string)')
    .argument('<key>', 'dotted key, e.g. storage.max')
    .argument('<value>', 'new value')
    .action(action(rt, async (ctx, c) => {
      const [key, raw] = c.processedArgs as [string, string]
      const { getConfigValue, setConfigValue } = await import('../../store/config.ts')
      const next = setConfigValue(await loadConfig(ctx.repoPath), key, raw)
      await saveConfig(ctx.repoPath, next)
      const value = getConfigValue(next, key)
      return output({ key, value }, (d) => `${d.key} = ${toJson(d.value)}`)
    }))
  example(set, 'pinbox config set api.port 5102', 'pinbox config set swarm.bootstrap \'["/dns4/gw.example/tcp/4101/p2p/12D3…"]\'')

  const show = config.command('show')
    .description('print the whole config, defaults filled in')
    .action(action(rt, async (ctx) => {
      const cfg = await loadConfig(ctx.repoPath)
      return output(cfg, (d) => toJson(d, true))
    }))
  example(show, 'pinbox config show', 'pinbox --json config show')
}
