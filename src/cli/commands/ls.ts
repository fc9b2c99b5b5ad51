import type { Command } from 'commander'
import { action } from '../command.ts'
import type { Runtime } from '../command.ts'
import { example } from '../help.ts'
import { output } from '../printer.ts'

interface KuboLink {
  Name: string
  Hash: string
  Size: number
  /** UnixFS data type: 0 raw, 1 directory, 2 file, 3 metadata, 4 symlink, 5 HAMT shard. */
  Type: number
  Target?: string
}

export interface LsObject {
  Hash: string
  Links: KuboLink[]
}

const TYPE_NAMES: Record<number, string> = { 0: 'raw', 1: 'directory', 2: 'file', 3: 'metadata', 4: 'symlink', 5: 'directory' }

export function registerLs (program: Command, rt: Runtime): void {
  const cmd = program.command('ls')
    .description('list the links of UnixFS directories (CIDs or /ipfs/ paths)')
    .argument('<path...>', 'CIDs or /ipfs/ paths of directories')
    .action(action(rt, async (ctx, c) => {
      const [paths] = c.processedArgs as [string[]]
      const res = await (await ctx.api()).call<{ Objects: LsObject[] | null }>('ls', { arg: paths })
      const objects = (res.Objects ?? []).map((o) => ({
        hash: o.Hash,
        links: (o.Links ?? []).map((l) => ({
          name: l.Name,
          cid: l.Hash,
          size: l.Size,
          type: TYPE_NAMES[l.Type] ?? 'unknown',
          ...(l.Target != null && l.Target !== '' ? { target: l.Target } : {})
        }))
      }))
      return output({ objects }, (d) => d.objects.flatMap((o, i) => {
        const lines = o.links.map((l) => `${l.cid} ${l.size} ${l.name}${l.type === 'directory' ? '/' : ''}`)
        // Like `ls a b` in a shell: headers only when more than one directory is listed.
        return d.objects.length > 1 ? [...(i > 0 ? [''] : []), `${o.hash}:`, ...lines] : lines
      }))
    }))
  example(cmd, 'pinbox ls bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi', 'pinbox --json ls /ipfs/bafybei…/photos')
}
