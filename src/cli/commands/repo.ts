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

interface GcLine {
  Key?: { '/': string } | string
  Error?: string
  Removed?: number
  FreedBytes?: number
  DurationMs?: number
  MarkMs?: number
}

export interface GcResult {
  removed: number
  freedBytes: number
  durationMs?: number
  /** Of durationMs, the time spent reading what the pins reach. */
  markMs?: number
  /** Removed CIDs, when the daemon lists them (Kubo does; pinbox reports totals). */
  keys: string[]
  errors: string[]
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
      const result: GcResult = { removed: 0, freedBytes: 0, keys: [], errors: [] }
      const api = await ctx.api()
      // Kubo streams one `{Key}` line per removed block; pinbox's daemon sends one summary line.
      for await (const value of api.ndjson<GcLine>('repo/gc', { 'stream-errors': true })) {
        if (value.Error != null && value.Error !== '') {
          result.errors.push(value.Error)
        } else if (value.Key != null) {
          result.keys.push(typeof value.Key === 'string' ? value.Key : value.Key['/'])
          result.removed++
        } else if (typeof value.Removed === 'number') {
          result.removed = value.Removed
          result.freedBytes = value.FreedBytes ?? 0
          if (value.DurationMs != null) result.durationMs = value.DurationMs
          if (value.MarkMs != null) result.markMs = value.MarkMs
        }
      }
      return output(result, (d) => [
        ...(quiet === true ? [] : d.keys.map((k) => `removed ${k}`)),
        ...d.errors.map((e) => `error: ${e}`),
        ...(quiet === true
          ? []
          : [`removed ${d.removed} blocks, freed ${d.freedBytes} bytes (${formatBytes(d.freedBytes)})${d.durationMs != null ? ` in ${d.durationMs} ms` : ''}`])
      ], result.errors.length > 0 ? EXIT_ERROR : 0)
    }))
  example(gc, 'pinbox repo gc', 'pinbox repo gc --quiet')
}
