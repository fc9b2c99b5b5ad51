import type { Command } from 'commander'
import { action, parseNonNegativeInt } from '../command.ts'
import type { Runtime } from '../command.ts'
import { writeAll } from '../context.ts'
import { example } from '../help.ts'

export function registerCat (program: Command, rt: Runtime): void {
  const cmd = program.command('cat')
    .description('write the bytes of a file (a CID or an /ipfs/ path) to stdout')
    .argument('<path>', 'CID or /ipfs/CID/sub/path')
    .option('--offset <bytes>', 'start at this byte', parseNonNegativeInt)
    .option('--length <bytes>', 'write at most this many bytes', parseNonNegativeInt)
    .action(action(rt, async (ctx, c) => {
      const [path] = c.processedArgs as [string]
      const opts = c.opts<{ offset?: number, length?: number }>()
      const api = await ctx.api()
      await writeAll(ctx.io.stdout, api.stream('cat', { arg: path, offset: opts.offset, length: opts.length }))
    }))
  example(cmd, 'pinbox cat bafkreigh2akiscaildc… > photo.jpg', 'pinbox cat /ipfs/bafybei…/notes/today.md --length 200')
}
