import { flushCompileCache } from 'node:module'
import { performance } from 'node:perf_hooks'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { Command } from 'commander'
import { action } from '../command.ts'
import { loadMallocTrim } from '../malloc-trim.ts'
import { createMemoryReducer } from '../memory-reducer.ts'
import { createGcObserver, createGcPacer } from '../../net/gc-pacer.ts'
import type { Runtime } from '../command.ts'
import { example } from '../help.ts'
import { output, printOutput } from '../printer.ts'

export interface DaemonInfo {
  peerId: string
  addresses: string[]
  apiUrl: string
  repoPath?: string
  gatewayUrl?: string
}

/** How long a graceful stop may take before the process exits anyway. */
export const STOP_GRACE_MS = 5000
/** When the one full GC after start-up runs: after the start-up bursts (DHT, identify) have settled. */
export const SETTLE_GC_MS = 3000

/** V8's gc() of the kinds the daemon runs itself. */
type ExposedGc = (options: { type: 'major' | 'minor', execution?: 'sync' | 'async', flavor?: 'regular' | 'last-resort' }) => void

/**
 * V8's gc(), or undefined on a Node without it. Node offers no gc() without --expose-gc, so the
 * flag is set at run time and the function taken from a fresh context.
 */
function exposeGc (): ExposedGc | undefined {
  try {
    setFlagsFromString('--expose-gc')
    const exposed = runInNewContext('gc') as unknown
    return typeof exposed === 'function' ? exposed as ExposedGc : undefined
  } catch {
    // a Node without the flag: the daemon only keeps more memory
    return undefined
  }
}

/**
 * Runs one full garbage collection a few seconds after start-up. Loading ~1300 modules and
 * starting the services grows V8's heap, and an idle daemon allocates too little for V8 to
 * shrink it again: measured (with Node's default young generation), the idle daemon kept
 * ~170 MiB resident, ~120 MiB after this one collection. It is V8's "last resort" kind, which
 * also compacts the heap and hands its free pages back: ~2 MiB less at 60 s than a plain one.
 * From then on the memory reducer does the same after bursts of work.
 */
function settleAfterStartup (exposed: ExposedGc | undefined): { stop(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined
  let reducer: ReturnType<typeof createMemoryReducer> | undefined
  if (exposed != null) {
    const gc = (): void => { exposed({ type: 'major', execution: 'sync', flavor: 'last-resort' }) }
    timer = setTimeout(() => {
      gc()
      // loaded here, not at start-up: FFI costs ~1.4 MB and a few ms that `pinbox id` need not wait for
      const trim = loadMallocTrim()
      trim?.()
      reducer = createMemoryReducer({
        gc,
        ...(trim == null ? {} : { trim }),
        rss: () => process.memoryUsage.rss(),
        utilization: performance.eventLoopUtilization.bind(performance)
      })
      reducer.start()
    }, SETTLE_GC_MS)
    timer.unref()
  }
  return {
    stop () {
      clearTimeout(timer)
      reducer?.stop()
    }
  }
}

export function registerDaemon (program: Command, rt: Runtime): void {
  const cmd = program.command('daemon')
    .description('run the pinbox node in the foreground (API, gateway, libp2p) until SIGINT or SIGTERM')
    .option('--init-if-missing', 'create the repo first if there is none')
    .action(action(rt, async (ctx, c) => {
      const { initIfMissing } = c.opts<{ initIfMissing?: boolean }>()
      // Loaded on demand so that client commands start without loading helia and libp2p.
      const { createNode } = await import('../../node.ts')
      const exposedGc = exposeGc()
      const gcObserver = exposedGc == null ? undefined : createGcObserver()
      const pacer = exposedGc == null || gcObserver == null
        ? undefined
        : createGcPacer({ minorGc: () => { exposedGc({ type: 'minor' }) }, collectedSince: gcObserver.collectedSince })
      const node = createNode({ repoPath: ctx.repoPath, initIfMissing: initIfMissing === true, ...(pacer == null ? {} : { onTraffic: pacer.note }) })
      await node.start()
      // the daemon's modules are now all loaded: write their compiled code to Node's compile cache
      // (when bin/pinbox.js enabled it) now, not at exit, so the next start finds it even after a kill
      flushCompileCache()
      const settling = settleAfterStartup(exposedGc)

      const info: DaemonInfo = node.info()
      printOutput(rt.io, ctx.json, output(info, (d) => [
        `peer id: ${d.peerId}`,
        'listening on:',
        ...d.addresses.map((a) => `  ${a}`),
        `API:     ${d.apiUrl}`,
        ...(d.repoPath != null ? [`repo:    ${d.repoPath}`] : []),
        ...(d.gatewayUrl != null ? [`gateway: ${d.gatewayUrl}`] : []),
        'daemon is ready'
      ]))

      const signal = await new Promise<NodeJS.Signals>((resolve) => {
        process.once('SIGINT', () => { resolve('SIGINT') })
        process.once('SIGTERM', () => { resolve('SIGTERM') })
      })
      rt.io.stderr.write(`received ${signal}, stopping\n`)
      settling.stop()
      pacer?.stop()
      gcObserver?.stop()
      // A stuck service must not keep a box from shutting down or restarting.
      const force = setTimeout(() => {
        rt.io.stderr.write(`Error: the daemon did not stop within ${STOP_GRACE_MS / 1000} s; exiting anyway\n`)
        process.exit(1)
      }, STOP_GRACE_MS)
      force.unref()
      // A second signal while stopping means the user wants out now.
      const again = (): void => {
        rt.io.stderr.write('Error: stop interrupted; exiting\n')
        process.exit(1)
      }
      process.once('SIGINT', again)
      process.once('SIGTERM', again)
      try {
        await node.stop()
      } finally {
        clearTimeout(force)
        process.off('SIGINT', again)
        process.off('SIGTERM', again)
      }
      rt.io.stderr.write('daemon stopped\n')
    }))
  example(cmd, 'pinbox daemon', 'pinbox daemon --init-if-missing --repo /mnt/disk/pinbox')
}
