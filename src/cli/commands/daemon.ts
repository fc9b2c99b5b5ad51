import type { Command } from 'commander'
import { action } from '../command.ts'
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

export function registerDaemon (program: Command, rt: Runtime): void {
  const cmd = program.command('daemon')
    .description('run the pinbox node in the foreground (API, gateway, libp2p) until SIGINT or SIGTERM')
    .option('--init-if-missing', 'create the repo first if there is none')
    .action(action(rt, async (ctx, c) => {
      const { initIfMissing } = c.opts<{ initIfMissing?: boolean }>()
      // Loaded on demand so that client commands start without loading helia and libp2p.
      const { createNode } = await import('../../node.ts')
      const node = createNode({ repoPath: ctx.repoPath, initIfMissing: initIfMissing === true })
      await node.start()

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
