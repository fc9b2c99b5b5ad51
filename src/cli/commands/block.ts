import type { Command } from 'commander'
import { action, parseBool } from '../command.ts'
import type { Runtime } from '../command.ts'
import { writeAll } from '../context.ts'
import { example } from '../help.ts'
import { encodeMultipart, pathParts, stdinPart } from '../multipart.ts'
import type { FormPart } from '../multipart.ts'
import { output } from '../printer.ts'

export interface BlockStat {
  Key: string
  Size: number
}

export function registerBlock (program: Command, rt: Runtime): void {
  const block = program.command('block')
    .description('read and write single raw blocks')
  example(block, 'pinbox block stat bafkrei…', 'echo hi | pinbox block put')

  const get = block.command('get')
    .description('write the raw bytes of one block to stdout')
    .argument('<cid>', 'block CID')
    .action(action(rt, async (ctx, c) => {
      const [cid] = c.processedArgs as [string]
      await writeAll(ctx.io.stdout, (await ctx.api()).stream('block/get', { arg: cid }))
    }))
  example(get, 'pinbox block get bafkreigh2akiscaildc… > block.bin')

  const put = block.command('put')
    .description('store bytes from a file or stdin as one block and print its CID')
    .argument('[file]', 'file to read, or - for stdin', '-')
    .option('--cid-codec <codec>', 'codec of the block: raw, dag-pb, dag-cbor, dag-json', 'raw')
    .option('--mhtype <hash>', 'multihash function', 'sha2-256')
    .option('--pin [bool]', 'pin the block directly', parseBool, false)
    .action(action(rt, async (ctx, c) => {
      const [file] = c.processedArgs as [string]
      const opts = c.opts<{ cidCodec: string, mhtype: string, pin: boolean }>()
      async function * parts (): AsyncGenerator<FormPart> {
        if (file === '-') yield stdinPart(ctx.io.stdin)
        else yield * pathParts(file)
      }
      const body = encodeMultipart(parts())
      const res = await (await ctx.api()).call<BlockStat>('block/put',
        { 'cid-codec': opts.cidCodec, mhtype: opts.mhtype, pin: opts.pin }, { body })
      return output({ cid: res.Key, size: res.Size }, (d) => d.cid)
    }))
  example(put, 'pinbox block put data.bin', 'echo \'{"a":1}\' | pinbox block put --cid-codec dag-json')

  const stat = block.command('stat')
    .description('show the size of one stored block')
    .argument('<cid>', 'block CID')
    .action(action(rt, async (ctx, c) => {
      const [cid] = c.processedArgs as [string]
      const res = await (await ctx.api()).call<BlockStat>('block/stat', { arg: cid })
      return output({ cid: res.Key, size: res.Size }, (d) => [`Key:  ${d.cid}`, `Size: ${d.size}`])
    }))
  example(stat, 'pinbox block stat bafkreigh2akiscaildc…')
}
