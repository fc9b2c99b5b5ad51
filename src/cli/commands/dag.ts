import type { Command } from 'commander'
import { action, parseBool } from '../command.ts'
import type { Runtime } from '../command.ts'
import { writeAll } from '../context.ts'
import { InvalidArgumentError } from '../errors.ts'
import { example } from '../help.ts'
import { encodeMultipart, pathParts, stdinPart } from '../multipart.ts'
import type { FormPart } from '../multipart.ts'
import { EXIT_ERROR, output } from '../printer.ts'

interface DagImportLine {
  Root?: { Cid: { '/': string } | string, PinErrorMsg?: string }
  Stats?: { BlockCount: number, BlockBytesCount: number }
}

export interface DagImportResult {
  roots: Array<{ cid: string, pinned: boolean, error?: string }>
  blocks: number
  bytes: number
}

export function registerDag (program: Command, rt: Runtime): void {
  const dag = program.command('dag')
    .description('move whole DAGs in and out as CAR files')
  example(dag, 'pinbox dag export bafybei… > backup.car', 'pinbox dag import backup.car')

  const exp = dag.command('export')
    .description('write the DAG under a CID to stdout as a CAR (v1) stream')
    .argument('<cid>', 'root CID')
    .action(action(rt, async (ctx, c) => {
      const [cid] = c.processedArgs as [string]
      if (ctx.io.stdout.isTTY === true) {
        throw new InvalidArgumentError('refusing to write a binary CAR to a terminal; redirect stdout to a file')
      }
      await writeAll(ctx.io.stdout, (await ctx.api()).stream('dag/export', { arg: cid }))
    }))
  example(exp, 'pinbox dag export bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi > photos.car')

  const imp = dag.command('import')
    .description('store the blocks of CAR files (or stdin) and pin their roots')
    .argument('[file...]', 'CAR files, or - for stdin')
    .option('--pin-roots [bool]', 'pin the roots named in the CAR headers', parseBool, true)
    .action(action(rt, async (ctx, c) => {
      const [given] = c.processedArgs as [string[]]
      const files = given.length === 0 ? ['-'] : given
      const { pinRoots } = c.opts<{ pinRoots: boolean }>()
      async function * parts (): AsyncGenerator<FormPart> {
        for (const f of files) {
          if (f === '-') yield stdinPart(ctx.io.stdin)
          else yield * pathParts(f)
        }
      }
      const result: DagImportResult = { roots: [], blocks: 0, bytes: 0 }
      const api = await ctx.api()
      for await (const line of api.ndjson<DagImportLine>('dag/import', { 'pin-roots': pinRoots, stats: true }, { body: encodeMultipart(parts()) })) {
        if (line.Root != null) {
          const cid = typeof line.Root.Cid === 'string' ? line.Root.Cid : line.Root.Cid['/']
          const error = line.Root.PinErrorMsg
          result.roots.push({ cid, pinned: pinRoots && (error == null || error === ''), ...(error != null && error !== '' ? { error } : {}) })
        }
        if (line.Stats != null) {
          result.blocks = line.Stats.BlockCount
          result.bytes = line.Stats.BlockBytesCount
        }
      }
      const failed = result.roots.some((r) => r.error != null)
      return output(result, (d) => [
        ...d.roots.map((r) => r.error != null ? `root ${r.cid} NOT pinned: ${r.error}` : `root ${r.cid}${r.pinned ? ' pinned' : ''}`),
        `imported ${d.blocks} blocks (${d.bytes} bytes)`
      ], failed ? EXIT_ERROR : 0)
    }))
  example(imp, 'pinbox dag import photos.car', 'curl -s https://…/x.car | pinbox dag import -')
}
