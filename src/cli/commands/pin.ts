import type { Command } from 'commander'
import { action, parseBool, parseNonNegativeInt } from '../command.ts'
import type { Runtime } from '../command.ts'
import { InvalidArgumentError } from '../errors.ts'
import { example } from '../help.ts'
import { EXIT_ERROR, output } from '../printer.ts'

export interface PinLsEntry {
  cid: string
  type: string
  name?: string
}

export interface PinVerifyEntry {
  cid: string
  ok: boolean
  bad: Array<{ cid: string, error: string }>
  /** With --repair: blocks restored from replicas. */
  repaired?: number
}

function formatBytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  let v = n
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i] ?? 'B'}`
}

const LIST_TYPES = ['all', 'recursive', 'direct', 'indirect']

/** Accepts both Kubo `pin/ls` shapes: streamed `{Cid,Type,Name}` lines and one `{Keys:{…}}` object. */
function * pinLsEntries (value: unknown): Generator<PinLsEntry> {
  const v = value as { Cid?: string, Type?: string, Name?: string, Keys?: Record<string, { Type: string, Name?: string }> }
  if (v.Keys != null) {
    for (const [cid, info] of Object.entries(v.Keys)) {
      yield { cid, type: info.Type, ...(info.Name != null && info.Name !== '' ? { name: info.Name } : {}) }
    }
  } else if (typeof v.Cid === 'string') {
    yield { cid: v.Cid, type: v.Type ?? 'unknown', ...(v.Name != null && v.Name !== '' ? { name: v.Name } : {}) }
  }
}

export function registerPin (program: Command, rt: Runtime): void {
  const pin = program.command('pin')
    .description('keep content on this node: add, list, remove, verify and update pins')
  example(pin, 'pinbox pin add bafybei… --name backups', 'pinbox pin ls --type recursive')

  const add = pin.command('add')
    .description('pin CIDs (recursively by default); returns once every block is stored durably')
    .argument('<cid...>', 'CIDs or /ipfs/ paths to pin')
    .option('--name <name>', 'a name for the pin')
    .option('--direct', 'pin only the root block, not its DAG')
    .option('--replicas <n>', 'copies wanted in the pool, this node\'s included (asks n-1 members)', parseNonNegativeInt)
    .option('--wait', 'with --replicas: return once every replica is pinned or failed')
    .option('--no-progress', 'no progress bar while blocks are fetched from the network')
    .action(action(rt, async (ctx, c) => {
      const [cids] = c.processedArgs as [string[]]
      const opts = c.opts<{ name?: string, direct?: boolean, replicas?: number, wait?: boolean, progress: boolean }>()
      const recursive = opts.direct !== true
      if (opts.replicas != null && opts.replicas < 1) throw new InvalidArgumentError('--replicas must be at least 1')
      const pinArgs = {
        arg: cids,
        recursive,
        name: opts.name,
        ...(opts.replicas == null ? {} : { replicas: opts.replicas }),
        ...(opts.wait === true ? { wait: true } : {})
      }
      const api = await ctx.api()
      // content the node lacks is fetched from peers: show blocks and bytes as they arrive
      const showBar = opts.progress && opts.replicas == null && ctx.io.stderr.isTTY === true && !ctx.json
      let res: { Pins: string[] | null } = { Pins: null }
      if (showBar) {
        // loaded only when a bar is shown: every CLI call pays for what main() imports
        const { default: cliProgress } = await import('cli-progress')
        const bar = new cliProgress.SingleBar({
          stream: ctx.io.stderr as NodeJS.WritableStream as never,
          format: 'pinning {value} blocks | {bytes}',
          hideCursor: true,
          clearOnComplete: true
        }, cliProgress.Presets.shades_classic)
        bar.start(0, 0, { bytes: '0 B' })
        try {
          for await (const line of api.ndjson<{ Progress?: number, Bytes?: number, Pins?: string[] | null }>('pin/add', { ...pinArgs, progress: true })) {
            if (line.Progress != null) bar.update(line.Progress, { bytes: formatBytes(line.Bytes ?? 0) })
            if (line.Pins !== undefined) res = { Pins: line.Pins }
          }
        } finally {
          bar.stop()
        }
      } else {
        res = await api.call<{ Pins: string[] | null }>('pin/add', pinArgs)
      }
      return output({ pins: res.Pins ?? [], type: recursive ? 'recursive' : 'direct' },
        (d) => d.pins.map((p) => `pinned ${p} ${d.type === 'recursive' ? 'recursively' : 'directly'}`))
    }))
  example(add, 'pinbox pin add bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi --name photos', 'pinbox pin add --direct bafkrei…', 'pinbox pin add bafybei… --replicas 3 --wait')

  const status = pin.command('status')
    .description('where the replicas of a pin are: each peer, its state (queued, pinning, pinned, failed) and since when')
    .argument('<cid>', 'a pinned CID')
    .option('--wait', 'wait until every replica is pinned or failed')
    .action(action(rt, async (ctx, c) => {
      const [cid] = c.processedArgs as [string]
      const opts = c.opts<{ wait?: boolean }>()
      const res = await (await ctx.api()).call<{ Cid: string, Replicas: number, Status: Array<{ Peer: string, State: string, Since: number, Reason?: string }> }>(
        'pin/status', { arg: [cid], ...(opts.wait === true ? { wait: true } : {}) })
      const replicas = (res.Status ?? []).map((s) => ({
        peer: s.Peer,
        state: s.State,
        since: new Date(s.Since).toISOString(),
        ...(s.Reason == null ? {} : { reason: s.Reason })
      }))
      return output({ cid: res.Cid, wanted: res.Replicas, replicas }, (d) => [
        `${d.cid}: ${d.replicas.filter((r) => r.state === 'pinned').length} of ${d.wanted} replicas pinned`,
        ...d.replicas.map((r) => `${r.peer}  ${r.state.padEnd(7)}  ${r.since}${r.reason != null ? `  ${r.reason}` : ''}`)
      ])
    }))
  example(status, 'pinbox pin status bafybei…', 'pinbox --json pin status bafybei… --wait')

  const ls = pin.command('ls')
    .description('list pins, optionally only of one type, one name or the given CIDs')
    .argument('[cid...]', 'only these CIDs')
    .option('--type <type>', 'all | recursive | direct | indirect', 'all')
    .option('--name <name>', 'only pins with this name')
    .action(action(rt, async (ctx, c) => {
      const [cids] = c.processedArgs as [string[]]
      const opts = c.opts<{ type: string, name?: string }>()
      if (!LIST_TYPES.includes(opts.type)) throw new InvalidArgumentError(`invalid --type "${opts.type}" (use ${LIST_TYPES.join(', ')})`)
      const api = await ctx.api()
      const pins: PinLsEntry[] = []
      for await (const value of api.ndjson('pin/ls', { arg: cids, type: opts.type, name: opts.name, names: true, stream: true })) {
        pins.push(...pinLsEntries(value))
      }
      return output({ pins }, (d) => d.pins.map((p) => `${p.cid} ${p.type}${p.name != null ? ` ${p.name}` : ''}`))
    }))
  example(ls, 'pinbox pin ls', 'pinbox pin ls --type recursive --name photos', 'pinbox --json pin ls bafybei…')

  const rm = pin.command('rm')
    .description('remove pins (the blocks go at the next garbage collection)')
    .argument('<cid...>', 'pinned CIDs')
    .action(action(rt, async (ctx, c) => {
      const [cids] = c.processedArgs as [string[]]
      const res = await (await ctx.api()).call<{ Pins: string[] | null }>('pin/rm', { arg: cids })
      return output({ pins: res.Pins ?? [] }, (d) => d.pins.map((p) => `unpinned ${p}`))
    }))
  example(rm, 'pinbox pin rm bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi')

  const verify = pin.command('verify')
    .description('re-hash every block of the pins; exits non-zero naming each broken block')
    .argument('[cid...]', 'only these pins (default: all)')
    .option('--repair', 're-fetch missing or corrupt blocks from pool members holding replicas')
    .action(action(rt, async (ctx, c) => {
      const [cids] = c.processedArgs as [string[]]
      const { repair } = c.opts<{ repair?: boolean }>()
      const api = await ctx.api()
      const results: PinVerifyEntry[] = []
      for await (const value of api.ndjson<{ Cid: string, Ok: boolean, Repaired?: number, BadNodes?: Array<{ Cid: string, Err: string }> | null }>(
        'pin/verify', { arg: cids, verbose: true, ...(repair === true ? { repair: true } : {}) })) {
        results.push({
          cid: value.Cid,
          ok: value.Ok,
          bad: (value.BadNodes ?? []).map((b) => ({ cid: b.Cid, error: b.Err })),
          ...(value.Repaired == null ? {} : { repaired: value.Repaired })
        })
      }
      const broken = results.filter((r) => !r.ok)
      return output({ ok: broken.length === 0, pins: results }, (d) => [
        ...d.pins.flatMap((r) => r.ok
          ? [`${r.cid} ok${r.repaired != null && r.repaired > 0 ? ` (${r.repaired} blocks repaired)` : ''}`]
          : [`${r.cid} broken`, ...r.bad.map((b) => `  ${b.cid}: ${b.error}`)]),
        d.ok ? `${d.pins.length} pins ok` : `${broken.length} of ${d.pins.length} pins broken`
      ], broken.length === 0 ? 0 : EXIT_ERROR)
    }))
  example(verify, 'pinbox pin verify', 'pinbox pin verify bafybei… && echo intact')

  const update = pin.command('update')
    .description('move a recursive pin from one CID to another (e.g. a new version of a folder), keeping its name')
    .argument('<from>', 'the pinned CID')
    .argument('<to>', 'the CID to pin instead')
    .option('--unpin [bool]', 'remove the old pin (use --unpin=false to keep both)', parseBool, true)
    .action(action(rt, async (ctx, c) => {
      const [from, to] = c.processedArgs as [string, string]
      const { unpin } = c.opts<{ unpin: boolean }>()
      const res = await (await ctx.api()).call<{ Pins: string[] | null }>('pin/update', { arg: [from, to], unpin })
      const pins = res.Pins ?? [from, to]
      return output({ from: pins[0] ?? from, to: pins[1] ?? to, unpinned: unpin },
        (d) => `updated ${d.from} to ${d.to}${d.unpinned ? '' : ' (old pin kept)'}`)
    }))
  example(update, 'pinbox pin update bafyOLD… bafyNEW…', 'pinbox pin update --unpin=false bafyOLD… bafyNEW…')
}
