import type { Command } from 'commander'
import { action } from '../command.ts'
import type { Runtime } from '../command.ts'
import { InvalidArgumentError } from '../errors.ts'
import { example } from '../help.ts'
import { output } from '../printer.ts'

const PROFILES = ['unixfs-v1-2025', 'kubo-v0'] as const
type Profile = typeof PROFILES[number]

interface RepoModule {
  initRepo(path: string, options: { profile?: Profile }): Promise<{ path: string, peerId: string, created: boolean }>
}

// Loaded on demand: the repo code pulls in LevelDB and libp2p keys, which no client command needs.
const REPO_MODULE = '../../store/repo.ts'

export interface InitResult {
  path: string
  peerId: string
  created: boolean
  profile: Profile
}

export function registerInit (program: Command, rt: Runtime): void {
  const cmd = program.command('init')
    .description('create a new repo (config, identity key, API token); does nothing to an existing one')
    .option('--profile <name>', `import defaults: ${PROFILES.join(' | ')}`, 'unixfs-v1-2025')
    .action(action(rt, async (ctx, c) => {
      const { profile } = c.opts<{ profile: string }>()
      if (!(PROFILES as readonly string[]).includes(profile)) {
        throw new InvalidArgumentError(`unknown profile "${profile}" (use ${PROFILES.join(' or ')})`)
      }
      const { initRepo } = await import(REPO_MODULE) as RepoModule
      const res = await initRepo(ctx.repoPath, { profile: profile as Profile })
      return output<InitResult>({ path: res.path, peerId: res.peerId, created: res.created, profile: profile as Profile }, (d) => d.created
        ? [`initialized pinbox repo at ${d.path} (profile ${d.profile})`, `peer id: ${d.peerId}`]
        : [`pinbox repo already exists at ${d.path}`, `peer id: ${d.peerId}`])
    }))
  example(cmd, 'pinbox init', 'pinbox --repo /mnt/disk/pinbox init --profile kubo-v0')
}
