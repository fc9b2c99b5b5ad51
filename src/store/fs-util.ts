import { randomBytes } from 'node:crypto'
import fs from 'node:fs/promises'
import { dirname, basename, join } from 'node:path'
import { DiskFullError } from './errors.ts'

export function errnoCode (err: unknown): string | undefined {
  return typeof err === 'object' && err != null && 'code' in err && typeof err.code === 'string' ? err.code : undefined
}

/** ENOSPC/EDQUOT become a typed `ERR_DISK_FULL` naming the path; other errors pass through. */
export function mapFsError (err: unknown, path: string): unknown {
  const code = errnoCode(err)
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new DiskFullError(path, { cause: err })
  }
  return err
}

/** LevelDB reports a full disk as an IO error whose text carries the OS message. */
export function mapLevelError (err: unknown, path: string): unknown {
  const text = `${(err as any)?.message ?? ''} ${(err as any)?.cause?.message ?? ''}`
  if (/No space left on device|ENOSPC|quota exceeded/i.test(text)) {
    return new DiskFullError(path, { cause: err })
  }
  return err
}

/** Whether `path` exists (anything `access` can see). */
export async function exists (path: string): Promise<boolean> {
  try {
    await fs.access(path)
    return true
  } catch {
    return false
  }
}

/** fsync a file or directory by path (Linux allows fsync on a read-only descriptor, also for directories). */
export async function fsyncPath (path: string): Promise<void> {
  const fh = await fs.open(path, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

export interface AtomicWriteOptions {
  mode?: number
}

/**
 * Readers see either the old file or the whole new one, never a torn write, even across a power
 * cut: temp file in the same directory, fsync, rename, fsync the directory.
 */
export async function atomicWriteFile (path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const dir = dirname(path)
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`)
  try {
    const fh = await fs.open(tmp, 'wx', options.mode ?? 0o644)
    try {
      await fh.writeFile(data)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await fs.rename(tmp, path)
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => {})
    throw mapFsError(err, path)
  }
  await fsyncPath(dir)
}

/** Runs `fn` over `items` with at most `limit` in flight; rejects with the first error after all settle. */
export async function mapLimit<T> (items: Iterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const it = items[Symbol.iterator]()
  let firstError: unknown
  let failed = false
  const worker = async (): Promise<void> => {
    for (let next = it.next(); next.done !== true; next = it.next()) {
      try {
        await fn(next.value)
      } catch (err) {
        if (!failed) {
          failed = true
          firstError = err
        }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker))
  if (failed) {
    throw firstError
  }
}
