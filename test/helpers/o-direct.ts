import fs from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The project's own scratch folder (ignored by git), on the disk the checkout is on. */
const PROJECT_TMP = fileURLToPath(new URL('../../tmp/', import.meta.url))

/**
 * True where O_DIRECT means what it means on a disk: the open succeeds and a write of a length the
 * device cannot take (1 byte) is refused. tmpfs (Linux 6.6+) takes O_DIRECT but writes any length.
 */
async function takesODirect (dir: string): Promise<boolean> {
  const probe = join(dir, '.o-direct-probe')
  let handle: fs.FileHandle | undefined
  try {
    handle = await fs.open(probe, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_DIRECT)
    await handle.write(new Uint8Array(1), 0, 1, 0)
    return false
  } catch (err: any) {
    return handle != null && err?.code === 'EINVAL'
  } finally {
    await handle?.close()
    await fs.rm(probe, { force: true })
  }
}

/**
 * A new empty folder on a disk file system that takes O_DIRECT (ext4, xfs, btrfs), for the
 * direct-write tests: in the OS temp folder, else inside the checkout. These tests
 * never skip: where neither takes O_DIRECT they fail and say so, as the direct-write path would
 * otherwise go untested without anyone noticing.
 */
export async function oDirectDir (): Promise<string> {
  for (const parent of [tmpdir(), PROJECT_TMP]) {
    await fs.mkdir(parent, { recursive: true })
    const dir = await fs.mkdtemp(join(parent, 'pinbox-direct-'))
    if (await takesODirect(dir)) return dir
    await fs.rm(dir, { recursive: true, force: true })
  }
  throw new Error(`neither ${tmpdir()} nor ${PROJECT_TMP} is on a file system that takes O_DIRECT`)
}
