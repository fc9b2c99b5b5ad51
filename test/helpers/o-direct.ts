import fs from 'node:fs/promises'
import { join } from 'node:path'

/**
 * The direct-write tests need a folder whose file system takes O_DIRECT (ext4, xfs, btrfs, and
 * tmpfs since Linux 6.6). A developer's machine without one skips them; CI sets
 * PINBOX_TEST_REQUIRE_O_DIRECT=1 (.ci/run), and there a refusing file system fails the test
 * instead, so the direct-write path can never silently go untested where results count.
 */
const required = process.env.PINBOX_TEST_REQUIRE_O_DIRECT === '1'

/** Resolves when `dir` takes O_DIRECT; otherwise skips the test, or fails it in CI. */
export async function requireODirect (dir: string, ctx: { skip(note?: string): void }): Promise<void> {
  const probe = join(dir, '.o-direct-probe')
  try {
    const handle = await fs.open(probe, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_DIRECT)
    await handle.close()
    return
  } catch (err: any) {
    const why = `${dir} refuses O_DIRECT (${err?.code ?? err})`
    if (required) throw new Error(`${why} (PINBOX_TEST_REQUIRE_O_DIRECT=1)`, { cause: err })
    ctx.skip(why)
  } finally {
    await fs.rm(probe, { force: true })
  }
}
