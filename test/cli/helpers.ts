import { PassThrough, Readable } from 'node:stream'
import { main } from '../../src/cli/main.ts'

export interface RunResult {
  code: number
  stdout: string
  stderr: string
  stdoutBytes: Buffer
}

/** Runs the CLI in-process with captured output, as `pinbox ...args` would. */
export async function run (args: string[], options: { env?: Record<string, string | undefined>, stdin?: string | Uint8Array } = {}): Promise<RunResult> {
  const out: Buffer[] = []
  const err: Buffer[] = []
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  stdout.on('data', (c: Buffer) => out.push(c))
  stderr.on('data', (c: Buffer) => err.push(c))
  const stdin = Readable.from(options.stdin == null ? [] : [Buffer.from(options.stdin)])
  const code = await main(['node', 'pinbox', ...args], { stdout, stderr, stdin, env: options.env ?? {} })
  const stdoutBytes = Buffer.concat(out)
  return { code, stdout: stdoutBytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes }
}
