import { lstat, open } from 'node:fs/promises'
import { basename } from 'node:path'
import type { Command } from 'commander'
import { action, parseBool, parseNonNegativeInt } from '../command.ts'
import type { Runtime } from '../command.ts'
import { ApiError, InvalidArgumentError } from '../errors.ts'
import { example } from '../help.ts'
import { encodeMultipart, measurePath, pathParts, stdinPart } from '../multipart.ts'
import type { FormPart } from '../multipart.ts'
import { output } from '../printer.ts'

interface AddOptions {
  recursive?: boolean
  hidden?: boolean
  cidVersion?: number
  chunker?: string
  rawLeaves?: boolean
  wrap?: boolean
  onlyHash?: boolean
  pin: boolean
  name?: string
  quiet?: boolean
  progress: boolean
  local: boolean
}

/** One line of Kubo's `add` reply: an added entry, or a progress count for `Name`. */
interface AddLine {
  Name: string
  Hash?: string
  Size?: string
  Bytes?: number
}

export interface AddedEntry {
  name: string
  cid: string
  size: number
}

export interface AddResult {
  /** The last entry the daemon reported: the wrapping directory, the top directory or the one file. */
  root: string
  entries: AddedEntry[]
}

function isLoopbackUrl (url: string): boolean {
  const host = new URL(url).hostname
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

/** `rest` with an already-read first result put back in front. */
async function * prepend<T> (first: IteratorResult<T>, rest: AsyncGenerator<T>): AsyncGenerator<T> {
  if (first.done === true) return
  yield first.value
  yield * rest
}

function checkChunker (spec: string): string {
  const m = /^size-(\d+)$/.exec(spec)
  const size = Number(m?.[1])
  if (m == null || !Number.isSafeInteger(size) || size < 1) {
    throw new InvalidArgumentError(`invalid --chunker "${spec}" (use size-N, e.g. size-1048576)`)
  }
  return spec
}

export function registerAdd (program: Command, rt: Runtime): void {
  const cmd = program.command('add')
    .description('import files or folders (or stdin) as UnixFS and pin them')
    .argument('[path...]', 'files, folders (with -r), or - for stdin', ['-'])
    .option('-r, --recursive', 'add folders with their contents')
    .option('-H, --hidden', 'include dot-files when adding folders')
    .option('--cid-version <n>', 'CID version: 0 or 1 (default: from the repo\'s import profile)', parseNonNegativeInt)
    .option('--chunker <spec>', 'fixed chunk size, size-N bytes (default: from the profile)')
    .option('--raw-leaves [bool]', 'store file chunks as raw blocks (--raw-leaves=false for UnixFS leaves)', parseBool)
    .option('--no-raw-leaves', 'wrap file chunks in UnixFS nodes')
    .option('-w, --wrap', 'wrap the added entries in a directory')
    .option('-n, --only-hash', 'compute the CIDs without storing anything')
    .option('--pin [bool]', 'pin the added content (--pin=false or --no-pin to skip)', parseBool, true)
    .option('--no-pin', 'do not pin the added content')
    .option('--name <name>', 'name for the pin')
    .option('-q, --quiet', 'print only the root CID')
    .option('--no-progress', 'no progress bar')
    .option('--no-local', 'always send the file\'s bytes over HTTP, even to a daemon on this machine')
    .action(action(rt, async (ctx, c) => {
      const [paths] = c.processedArgs as [string[]]
      const opts = c.opts<AddOptions>()
      if (opts.cidVersion != null && opts.cidVersion !== 0 && opts.cidVersion !== 1) {
        throw new InvalidArgumentError(`invalid --cid-version ${opts.cidVersion} (use 0 or 1)`)
      }
      if (opts.chunker != null) checkChunker(opts.chunker)
      if (paths.filter((p) => p === '-').length > 1) throw new InvalidArgumentError('stdin (-) can be added only once')

      const showBar = opts.progress && ctx.io.stderr.isTTY === true && !ctx.json && opts.quiet !== true
      let total = 0
      if (showBar) {
        for (const p of paths) if (p !== '-') total += await measurePath(p, opts)
      }

      async function * parts (): AsyncGenerator<FormPart> {
        for (const p of paths) {
          if (p === '-') yield stdinPart(ctx.io.stdin)
          else yield * pathParts(p, opts)
        }
      }
      // Fail before the upload starts on a missing path or a folder without -r.
      for (const p of paths) if (p !== '-') await pathParts(p, opts).next()

      const args = {
        'cid-version': opts.cidVersion,
        chunker: opts.chunker,
        'raw-leaves': opts.rawLeaves,
        'wrap-with-directory': opts.wrap === true ? true : undefined,
        'only-hash': opts.onlyHash === true ? true : undefined,
        pin: opts.pin,
        'pin-name': opts.pin ? opts.name : undefined,
        progress: showBar ? true : undefined
      }

      // the bar's module is loaded only when a bar is shown: every CLI call pays for what main() imports
      const cliProgress = showBar ? (await import('cli-progress')).default : undefined
      const bar = cliProgress != null
        ? new cliProgress.SingleBar({
          stream: ctx.io.stderr as NodeJS.WritableStream as never,
          format: total > 0 ? 'adding [{bar}] {percentage}% | {value}/{total} bytes' : 'adding {value} bytes',
          hideCursor: true,
          clearOnComplete: true
        }, cliProgress.Presets.shades_classic)
        : undefined
      // Kubo reports bytes per file name, so the overall count is the sum over names.
      const perFile = new Map<string, number>()
      const entries: AddedEntry[] = []
      bar?.start(total, 0)
      // one regular file, or one folder with -r, to a daemon on this machine: the daemon reads it from the disk itself
      const single = paths.length === 1 && paths[0] !== '-' && opts.local ? paths[0] as string : undefined
      const kind = single == null ? undefined : await lstat(single)
      const handed = single != null && (kind?.isFile() === true || (kind?.isDirectory() === true && opts.recursive === true)) ? await open(single, 'r') : undefined
      try {
        const api = await ctx.api()
        let lines: AsyncGenerator<AddLine> | undefined
        let first: IteratorResult<AddLine> | undefined
        if (handed != null && isLoopbackUrl(api.apiUrl)) {
          lines = api.ndjson<AddLine>('add', {
            ...args,
            'local-fd': `${process.pid}:${handed.fd}`,
            'local-name': basename(single as string),
            ...(opts.hidden === true ? { hidden: true } : {})
          })
          try {
            first = await lines.next()
          } catch (err) {
            // another user's daemon, a container, not Linux: send the bytes instead
            if (!(err instanceof ApiError && err.apiCode === 'ERR_LOCAL_FILE_REFUSED')) throw err
            lines = undefined
          }
        }
        lines ??= api.ndjson<AddLine>('add', args, { body: encodeMultipart(parts()) })
        const rest = first == null ? lines : prepend(first, lines)
        for await (const line of rest) {
          if (line.Hash != null) {
            entries.push({ name: line.Name, cid: line.Hash, size: Number(line.Size ?? 0) })
          } else if (line.Bytes != null && bar != null) {
            perFile.set(line.Name, line.Bytes)
            let sum = 0
            for (const b of perFile.values()) sum += b
            bar.update(sum)
          }
        }
      } finally {
        bar?.stop()
        await handed?.close()
      }
      const root = entries[entries.length - 1]?.cid
      if (root == null) throw new InvalidArgumentError('nothing was added')
      return output<AddResult>({ root, entries }, (d) => opts.quiet === true
        ? d.root
        : d.entries.map((e) => `added ${e.cid} ${e.name === '' ? e.cid : e.name}`))
    }))
  example(cmd, 'pinbox add photo.jpg', 'pinbox add -r ./photos --name photos', 'cat notes.txt | pinbox add -q', 'pinbox add -n --cid-version 0 --chunker size-262144 big.iso')
}
