import type { Command } from 'commander'
import { action } from '../command.ts'
import type { Runtime } from '../command.ts'
import { example } from '../help.ts'
import { output } from '../printer.ts'

export interface ProvideStatResult {
  Strategy: string
  Interval: number
  Total: number
  LastRun?: number
  NextRun?: number
  Announced: number
  Failed: number
  Retrying: number
  Recent?: Array<{ Cid: string, At: number }> | null
}

function when (ms: number | undefined): string {
  return ms == null ? 'never' : new Date(ms).toISOString()
}

function hours (ms: number): string {
  return ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : `${Math.round(ms / 1000)}s`
}

export function registerProvide (program: Command, rt: Runtime): void {
  const provide = program.command('provide')
    .description('what this node announces to the DHTs (Amino and the pool\'s) and when')
  example(provide, 'pinbox provide stat')

  const stat = provide.command('stat')
    .description('show the provide strategy, schedule size, last and next run and recent announcements')
    .action(action(rt, async (ctx) => {
      const res = await (await ctx.api()).call<ProvideStatResult>('provide/stat')
      return output(res, (d) => [
        `strategy:  ${d.Strategy} (every ${hours(d.Interval)})`,
        `scheduled: ${d.Total} CIDs`,
        `announced: ${d.Announced} since start, ${d.Failed} failed${d.Retrying > 0 ? ` (${d.Retrying} CIDs to retry)` : ''}`,
        `last run:  ${when(d.LastRun)}`,
        `next run:  ${when(d.NextRun)}`,
        ...((d.Recent ?? []).length > 0 ? ['recent:', ...(d.Recent ?? []).map((r) => `  ${r.Cid} ${when(r.At)}`)] : [])
      ])
    }))
  example(stat, 'pinbox provide stat', 'pinbox --json provide stat')
}
