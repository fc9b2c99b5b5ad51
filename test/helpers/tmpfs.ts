import { spawnSync } from 'node:child_process'

/**
 * Full-disk tests mount a small tmpfs, which needs root. A developer's machine without it skips
 * them; CI sets PINBOX_TEST_REQUIRE_TMPFS=1 (.ci/run), and there a refused mount fails the test
 * instead, so the tests can never silently not run where results count.
 */
const required = process.env.PINBOX_TEST_REQUIRE_TMPFS === '1'

/** False only where the tests may be skipped: not required and not root with a mount command. */
export const tmpfsAvailable = required || (process.getuid?.() === 0 && spawnSync('mount', ['--version']).status === 0)

/** Mounts a tmpfs of `size` (e.g. `256k`) on `path`; skips the test, or fails it in CI, when refused. */
export function mountTmpfs (path: string, size: string, ctx: { skip(note?: string): void }): void {
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', path])
  if (mounted.status === 0) return
  const why = `cannot mount a tmpfs here: ${mounted.stderr?.toString().trim() ?? mounted.error?.message ?? ''}`
  if (required) throw new Error(`${why} (PINBOX_TEST_REQUIRE_TMPFS=1)`)
  ctx.skip(why)
}
