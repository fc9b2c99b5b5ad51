import type { Command } from 'commander'
import { action } from '../command.ts'
import type { Runtime } from '../command.ts'
import { InvalidArgumentError } from '../errors.ts'
import { example } from '../help.ts'
import { output } from '../printer.ts'

const PROFILES = ['unixfs-v1-2025', 'kubo-v0'] as const
type Profile = typeof PROFILES[number]

export interface InitResult {
  path: string
  peerId: string
  profile: Profile
}

export function registerInit (program: Command, rt: Runtime): void {
  const cmd = program.command('init')
    .description('create a new repo (config, identity key, API token); refuses to touch an existing one')
    .option('--profile <name>', `import defaults: ${PROFILES.join(' | ')}`, 'unixfs-v1-2025')
    .action(action(rt, async (ctx, c) => {
      const { profile } = c.opts<{ profile: string }>()
      if (!(PROFILES as readonly string[]).includes(profile)) {
        throw new InvalidArgumentError(`unknown profile "${profile}" (use ${PROFILES.join(' or ')})`)
      }
      // Loaded on demand: the repo code pulls in LevelDB and libp2p keys, which client commands never need.
      const { initRepo } = await import('../../store/repo.ts')
      const res = await initRepo(ctx.repoPath, { profile: profile as Profile })
      return output<InitResult>({ path: res.path, peerId: res.peerId.toString(), profile: profile as Profile }, (d) => [
        `initialized pinbox repo at ${d.path} (import profile ${d.profile})`,
        `peer id: ${d.peerId}`,
        'start the node with: pinbox daemon'
      ])
    }))
  example(cmd, 'pinbox init', 'pinbox --repo /mnt/disk/pinbox init --profile kubo-v0')
}
