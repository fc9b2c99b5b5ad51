import { spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { expect, it } from 'vitest'

/**
 * Full-disk tests run their scenario on a small tmpfs. Mounting one takes root, so a test run by
 * anyone else runs that one test again, alone, in a user and mount namespace of its own
 * (`unshare --user --map-root-user --mount`), where it is root of a private mount table, and
 * passes only if that run passed. Nothing is skipped: where neither works, the test fails and
 * says why.
 */
const isRoot = process.getuid?.() === 0
/** Set in the namespaced run, so it mounts instead of spawning again. */
const NAMESPACED = 'PINBOX_TEST_IN_MOUNT_NAMESPACE'

/**
 * `it(name, …)` whose body gets a fresh tmpfs of `size` (e.g. `256k`), unmounted afterwards.
 * `file` is the calling spec (`import.meta.filename`), for the namespaced re-run.
 */
export function itOnTmpfs (name: string, size: string, file: string, body: (mnt: string) => Promise<void>, timeout = 60_000): void {
  it(name, async () => {
    if (isRoot || process.env[NAMESPACED] === '1') {
      await withTmpfs(size, body)
      return
    }
    const vitest = join(process.cwd(), 'node_modules', 'vitest', 'vitest.mjs')
    const run = spawnSync('unshare', ['--user', '--map-root-user', '--mount', '--', process.execPath, vitest, 'run', relative(process.cwd(), file), '-t', name], {
      env: { ...process.env, [NAMESPACED]: '1', NO_COLOR: '1', FORCE_COLOR: '0' },
      encoding: 'utf8',
      timeout
    })
    // eslint-disable-next-line no-control-regex
    const output = `${run.stdout ?? ''}${run.stderr ?? ''}${run.error?.message ?? ''}`.replace(/\u001b\[[0-9;]*m/g, '')
    expect(run.status, `the test run again in a user and mount namespace (unshare) failed:\n${output}`).toBe(0)
    // a name that matched nothing would pass vacuously
    expect(output).toMatch(/Tests\D+1 passed/)
  }, timeout)
}

async function withTmpfs (size: string, body: (mnt: string) => Promise<void>): Promise<void> {
  const mnt = await mkdtemp(join(tmpdir(), 'pinbox-tmpfs-'))
  try {
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mnt], { encoding: 'utf8' })
    if (mounted.status !== 0) throw new Error(`cannot mount a tmpfs on ${mnt}: ${mounted.stderr ?? mounted.error?.message ?? ''}`)
    try {
      await body(mnt)
    } finally {
      spawnSync('umount', [mnt])
    }
  } finally {
    await rm(mnt, { recursive: true, force: true })
  }
}
