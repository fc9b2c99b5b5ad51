import type { Command } from 'commander'
import { action } from '../command.ts'
import type { Runtime } from '../command.ts'
import { example } from '../help.ts'
import { EXIT_ERROR, formatBytes, output } from '../printer.ts'

export interface RepoStat {
  RepoSize: number
  StorageMax: number
  NumObjects: number
  RepoPath: string
  Version: string
}

export function registerRepo (program: Command, rt: Runtime): void {
  const repo = program.command('repo')
    .description('the node\'s storage: usage and garbage collection')
  example(repo, 'pinbox repo stat', 'pinbox repo gc')

  const stat = repo.command('stat')
    .description('show blocks stored, bytes used and the storage limit')
    .action(action(rt, async (ctx) => {
      const res = await (await ctx.api()).call<RepoStat>('repo/stat')
      return output(res, (d) => [
        `NumObjects: ${d.NumObjects}`,
        `RepoSize:   ${d.RepoSize} (${formatBytes(d.RepoSize)})`,
        `StorageMax: ${d.StorageMax} (${formatBytes(d.StorageMax)})`,
        `RepoPath:   ${d.RepoPath}`,
        `Version:    ${d.Version}`
      ])
    }))
  example(stat, 'pinbox repo stat', 'pinbox --json repo stat')

  const gc = repo.command('gc')
    .description('remove every block that no pin reaches')
    .option('-q, --quiet', 'print nothing but errors')
    .action(action(rt, async (ctx, c) => {
      const { quiet } = c.opts<{ quiet?: boolean }>()
      const removed: string[] = []
      const errors: string[] = []
      const api = await ctx.api()
      for await (const value of api.ndjson<{ Key?: { '/': string } | string, Error?: string }>('repo/gc', { 'stream-errors': true })) {
        if (value.Error != null && value.Error !== '') errors.push(value.Error)
        else if (value.Key != null) removed.push(typeof value.Key === 'string' ? value.Key : value.Key['/'])
      }
      return output({ removed, errors }, (d) => [
        ...(quiet === true ? [] : d.removed.map((k) => `removed ${k}`)),
        ...d.errors.map((e) => `error: ${e}`),
        ...(quiet === true ? [] : [`${d.removed.length} blocks removed`])
      ], errors.length > 0 ? EXIT_ERROR : 0)
    }))
  example(gc, 'pinbox repo gc', 'pinbox repo gc --quiet')
}
