import { constants } from 'node:fs'
import { mkdir, open, realpath, symlink, utimes } from 'node:fs/promises'
import { dirname, join, resolve, sep } from 'node:path'
import { Readable } from 'node:stream'
import type { Command } from 'commander'
import tar from 'tar-stream'
import { action } from '../command.ts'
import type { Runtime } from '../command.ts'
import { BadResponseError, UnsafePathError } from '../errors.ts'
import { example } from '../help.ts'
import { output } from '../printer.ts'

export interface GetResult {
  path: string
  files: number
  directories: number
  bytes: number
}

/** Splits a tar entry name into safe segments, refusing absolute names and `..` anywhere. */
export function safeSegments (name: string): string[] {
  if (name.startsWith('/') || name.startsWith('\\') || /^[a-zA-Z]:/.test(name)) {
    throw new UnsafePathError(`refusing absolute path in archive: ${name}`)
  }
  const segments = name.split(/[/\\]/).filter((s) => s !== '' && s !== '.')
  if (segments.some((s) => s === '..')) throw new UnsafePathError(`refusing ".." in archive path: ${name}`)
  return segments
}

function isInside (root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep)
}

/**
 * Writes a tar stream (Kubo's `get` reply) under `out`: the archive's top entry becomes `out`
 * itself. Entries are checked twice: by name, and by where their parent folder really is on
 * disk, so a symlink placed by an earlier entry cannot redirect a later write.
 */
export async function extractTar (source: AsyncIterable<Uint8Array>, out: string): Promise<Omit<GetResult, 'path'>> {
  const stats = { files: 0, directories: 0, bytes: 0 }
  const extract = tar.extract()
  const input = Readable.from(source)
  input.on('error', (err) => extract.destroy(err))
  input.pipe(extract)
  let top: string | undefined
  let realOut: string | undefined

  const target = async (name: string): Promise<string> => {
    const segments = safeSegments(name)
    const [first, ...rest] = segments
    if (first == null) throw new UnsafePathError(`empty path in archive: "${name}"`)
    top ??= first
    if (first !== top) throw new BadResponseError(`archive has more than one top entry (${top}, ${first})`)
    return rest.length === 0 ? out : join(out, ...rest)
  }
  const checkParent = async (path: string): Promise<void> => {
    if (path === out) return
    await mkdir(dirname(path), { recursive: true })
    realOut ??= await realpath(out)
    const parent = await realpath(dirname(path))
    if (!isInside(realOut, parent)) throw new UnsafePathError(`refusing to write outside ${out}: ${path}`)
  }

  for await (const entry of extract) {
    const { header } = entry
    const path = await target(header.name)
    if (header.type === 'directory') {
      await checkParent(path)
      await mkdir(path, { recursive: true })
      if (path === out) realOut = await realpath(out)
      stats.directories++
      entry.resume()
    } else if (header.type === 'file' || header.type === 'contiguous-file') {
      if (path === out) await mkdir(dirname(out), { recursive: true })
      else await checkParent(path)
      // O_NOFOLLOW: never write through a symlink that sits where the file should be.
      const fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, header.mode ?? 0o644)
      try {
        for await (const chunk of entry as AsyncIterable<Buffer>) {
          await fh.write(chunk)
          stats.bytes += chunk.length
        }
      } finally {
        await fh.close()
      }
      if (header.mtime != null) await utimes(path, header.mtime, header.mtime).catch(() => {})
      stats.files++
    } else if (header.type === 'symlink' && header.linkname != null) {
      await checkParent(path)
      await symlink(header.linkname, path)
      entry.resume()
    } else {
      entry.resume()
    }
  }
  return stats
}

export function registerGet (program: Command, rt: Runtime): void {
  const cmd = program.command('get')
    .description('download a file or folder (a CID or /ipfs/ path) to disk')
    .argument('<path>', 'CID or /ipfs/CID/sub/path')
    .option('-o, --output <path>', 'where to write it (default: ./<CID or last path segment>)')
    .action(action(rt, async (ctx, c) => {
      const [ipfsPath] = c.processedArgs as [string]
      const opts = c.opts<{ output?: string }>()
      const last = ipfsPath.split('/').filter((s) => s !== '' && s !== 'ipfs').pop() ?? ipfsPath
      const out = resolve(opts.output ?? last)
      const api = await ctx.api()
      const stats = await extractTar(api.stream('get', { arg: ipfsPath }), out)
      return output<GetResult>({ path: out, ...stats }, (d) => `saved ${ipfsPath} to ${d.path} (${d.files} files, ${d.directories} folders, ${d.bytes} bytes)`)
    }))
  example(cmd, 'pinbox get bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi -o ./photos', 'pinbox get /ipfs/bafybei…/notes/today.md')
}
