import { createRequire } from 'node:module'

/**
 * glibc's `malloc_trim(0)`, for handing freed C-heap memory back to the kernel.
 *
 * Why: glibc returns memory from its main heap only when the free space is at the top; free
 * chunks below live ones stay resident. An idle daemon's main arena held 18.4 MB of which 8.5 MB
 * were in use (glibc's own `malloc_stats`), and that leftover is what made idle RSS wander between
 * 108 and 116 MiB from run to run. One `malloc_trim(0)` took three idle daemons from 112.9–115.7
 * MB to 106.6–106.8 MB (by hand, 2026-11-27). Node has no binding for it, so it is called through
 * koffi (a maintained FFI with prebuilt binaries; loading it costs ~1.4 MB, so it is loaded only
 * when first needed, not at start-up).
 *
 * Undefined where there is nothing to call: not Linux, a C library without `malloc_trim` (musl),
 * or no koffi build for this platform. The daemon then only keeps more memory.
 */
export function loadMallocTrim (): (() => void) | undefined {
  if (process.platform !== 'linux') return undefined
  try {
    const koffi = createRequire(import.meta.url)('koffi') as {
      load(path: string): { func(signature: string): (pad: number) => number }
    }
    const trim = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)')
    return () => { trim(0) }
  } catch {
    return undefined
  }
}
