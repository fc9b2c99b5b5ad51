/**
 * The daemon's memory settings, which only exist at process start: V8's young generation size
 * and glibc's malloc arenas. `bin/pinbox.js` re-executes a `pinbox daemon` process in place
 * (`process.execve`: same pid, same stdio, no wrapper process) with these set, so `pinbox daemon`,
 * `npm start`, a systemd unit and the tests all run the daemon the same way.
 *
 * Measured on the 2-core box (bench/results.md): with Node's defaults V8 grows the young
 * generation to 2 x 64 MB semi-spaces under the daemon's streaming load and glibc gives each
 * thread its own arena, so a daemon replicating 10,000 small pins peaked at 402 MiB and the
 * 1 GiB add at 269 MiB; with an 8 MB semi-space and 2 arenas the same runs peaked at ~210 and
 * ~165 MiB at the same speed (within the run-to-run noise). A 4 MB semi-space then took the
 * 256 MiB replication that follows a 10,000-pin run from 238 MiB (already with the memory
 * reducer) to 216-236 MiB over four bench runs, with the add's
 * speed unchanged (3 alternating pairs of 1 GiB adds: 312-481 against 361-463 MB/s).
 */
/** Set by the re-executed process; set it yourself to run the daemon with Node's defaults. */
export const TUNED_ENV = 'PINBOX_DAEMON_TUNED'
export const SEMI_SPACE_MB = 4
/**
 * The old generation may grow to 1.25x what the last full GC kept (V8 picks 1.1x to 4x by
 * itself): a daemon keeping ~50 MB alive let its heap reach 210 MB between collections while
 * replicating 10,000 pins, and the freed pages stay resident in V8's page pool, so its RSS
 * climbed run after run (271, then 386 MiB); with 1.5x it peaked at 228 and 244 MiB. 1.25x since
 * the marking triggers below let the heap actually reach its limit: with 1.5x and them the
 * 10,000-pin run peaked at 272 MiB, with 1.25x at 229 MiB.
 */
export const HEAP_GROWING_PERCENT = 25
export const MALLOC_ARENAS = '2'
/**
 * When V8 starts marking the old generation, in percent of the way from the size the last full GC
 * left to the heap limit (soft: a marking task is scheduled; hard: marking starts at once). V8's
 * own rule starts marking once the room left is below the young generation's target capacity,
 * which with the limit this close (above) holds right after every collection: a daemon
 * streaming a transfer marked its whole heap again every ~15 MB moved, 15-24 full collections per
 * 256 MiB replicated on each side, ~45 % of both processes' CPU (bench/results.md). With these the
 * same transfer ran 0-6 of them and went from ~130 to 205-265 MB/s (two members, three runs);
 * the raw libp2p stream it is measured against went from ~320 to ~420 MB/s. The dead buffers a
 * transfer leaves are then freed by scavenges instead (src/net/gc-pacer.ts).
 */
export const MARKING_SOFT_TRIGGER = 80
export const MARKING_HARD_TRIGGER = 95

/** Global options that take a value, so `--repo daemon` is not mistaken for the command. */
const VALUE_OPTIONS = new Set(['--repo', '--api', '--timeout'])

/** The command word of a `pinbox` argv (after node and the script), or undefined. */
export function commandOf (args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string
    if (arg === '--') return args[i + 1]
    if (VALUE_OPTIONS.has(arg)) {
      i++
      continue
    }
    if (arg.startsWith('-')) continue
    return arg
  }
  return undefined
}

export interface ExecPlan {
  /** argv for execve, starting with the node binary. */
  args: string[]
  env: Record<string, string>
}

export interface ProcessFacts {
  execPath: string
  execArgv: readonly string[]
  /** process.argv: node, the script, then pinbox's own arguments. */
  argv: readonly string[]
  env: Readonly<Record<string, string | undefined>>
}

/**
 * How to restart this process as a tuned daemon, or undefined when it is not `pinbox daemon` or
 * is already tuned. A setting the user chose (in NODE_OPTIONS or node's own flags) is kept.
 */
export function daemonExecPlan (facts: ProcessFacts): ExecPlan | undefined {
  if (facts.env[TUNED_ENV] != null) return undefined
  if (commandOf(facts.argv.slice(2)) !== 'daemon') return undefined
  const { flags, env } = tunedRuntime(facts.execArgv, facts.env)
  env[TUNED_ENV] = '1'
  return { args: [facts.execPath, ...facts.execArgv, ...flags, ...facts.argv.slice(1)], env }
}

/**
 * The node flags and environment that give a process the daemon's memory settings, keeping any
 * the process was already given. Also used for the benchmark's raw libp2p peers, so their
 * baseline runs on the same runtime as the daemon.
 */
export function tunedRuntime (execArgv: readonly string[], baseEnv: Readonly<Record<string, string | undefined>>): { flags: string[], env: Record<string, string> } {
  const given = [...execArgv, baseEnv.NODE_OPTIONS ?? '']
  const chosen = (flag: string): boolean => given.some(a => a.includes(flag))
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(baseEnv)) if (v != null) env[k] = v
  env.MALLOC_ARENA_MAX ??= MALLOC_ARENAS
  const flags = [
    ...(chosen('semi-space-size') ? [] : [`--max-semi-space-size=${SEMI_SPACE_MB}`]),
    ...(chosen('heap-growing-percent') ? [] : [`--heap-growing-percent=${HEAP_GROWING_PERCENT}`]),
    ...(chosen('incremental-marking-soft-trigger') ? [] : [`--incremental-marking-soft-trigger=${MARKING_SOFT_TRIGGER}`]),
    ...(chosen('incremental-marking-hard-trigger') ? [] : [`--incremental-marking-hard-trigger=${MARKING_HARD_TRIGGER}`])
  ]
  return { flags, env }
}
