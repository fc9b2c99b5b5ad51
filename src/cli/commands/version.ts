import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { action } from '../command.ts'
import type { Runtime } from '../command.ts'
import { DaemonNotRunningError } from '../errors.ts'
import { example } from '../help.ts'
import { output } from '../printer.ts'

interface KuboVersion {
  Version: string
  Commit?: string
  Repo?: string
  System?: string
}

export interface VersionResult {
  client: string
  /** Null when no daemon answers: the client version is still worth printing. */
  daemon: KuboVersion | null
}

async function clientVersion (): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string }
  return pkg.version ?? 'unknown'
}

export function registerVersion (program: Command, rt: Runtime): void {
  const cmd = program.command('version')
    .description('show the pinbox client version and the running daemon\'s version')
    .action(action(rt, async (ctx) => {
      const api = await ctx.api()
      let daemon: KuboVersion | null = null
      try {
        daemon = await api.call<KuboVersion>('version')
      } catch (err) {
        if (!(err instanceof DaemonNotRunningError)) throw err
      }
      return output<VersionResult>({ client: await clientVersion(), daemon }, (d) => [
        `pinbox client ${d.client}`,
        d.daemon == null
          ? `daemon: not running (no API at ${api.apiUrl})`
          : `daemon ${d.daemon.Version}${d.daemon.Repo != null ? ` (repo version ${d.daemon.Repo})` : ''}${d.daemon.System != null ? ` on ${d.daemon.System}` : ''}`
      ])
    }))
  example(cmd, 'pinbox version', 'pinbox --json version')
}
