import { PassThrough } from 'node:stream'
import { CommanderError } from 'commander'
import { describe, expect, it } from 'vitest'
import { ApiError, DaemonNotRunningError } from '../../src/cli/errors.ts'
import { EXIT_ERROR, EXIT_OK, EXIT_USAGE, errorLine, formatBytes, output, printError, printOutput } from '../../src/cli/printer.ts'

function sink (): { stream: PassThrough, text: () => string } {
  const stream = new PassThrough()
  const chunks: Buffer[] = []
  stream.on('data', (c: Buffer) => chunks.push(c))
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') }
}

describe('printer', () => {
  const result = output({ pins: ['bafyA', 'bafyB'], size: 10n }, (d) => d.pins.map((p) => `pinned ${p}`))

  it('prints text lines', () => {
    const out = sink()
    expect(printOutput({ stdout: out.stream }, false, result)).toBe(EXIT_OK)
    expect(out.text()).toBe('pinned bafyA\npinned bafyB\n')
  })

  it('prints the same data as one JSON line with --json (bigints as strings)', () => {
    const out = sink()
    printOutput({ stdout: out.stream }, true, result)
    expect(out.text().endsWith('\n')).toBe(true)
    expect(JSON.parse(out.text())).toEqual({ pins: ['bafyA', 'bafyB'], size: '10' })
  })

  it('prints nothing for empty text, and returns the result exit code', () => {
    const out = sink()
    expect(printOutput({ stdout: out.stream }, false, output({ ok: false }, () => [], EXIT_ERROR))).toBe(EXIT_ERROR)
    expect(out.text()).toBe('')
  })

  it('prints one "Error:" line without a stack unless debugging', () => {
    const err = sink()
    const e = new ApiError('pin not found\nwith detail', 404)
    expect(printError({ stderr: err.stream }, e, false)).toBe(EXIT_ERROR)
    expect(err.text()).toBe('Error: pin not found\n')

    const dbg = sink()
    printError({ stderr: dbg.stream }, e, true)
    expect(dbg.text().split('\n').length).toBeGreaterThan(3)
    expect(dbg.text()).toContain('at ')
  })

  it('maps commander usage errors to exit 2 and help to 0', () => {
    const err = sink()
    expect(printError({ stderr: err.stream }, new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'"), false)).toBe(EXIT_USAGE)
    expect(err.text()).toBe("Error: unknown option '--x'\n")
    expect(printError({ stderr: sink().stream }, new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)'), false)).toBe(EXIT_OK)
  })

  it('says how to start the daemon when it is not running', () => {
    expect(errorLine(new DaemonNotRunningError('http://127.0.0.1:5101'))).toBe(
      'Error: pinbox daemon is not running (no API at http://127.0.0.1:5101); start it with `pinbox daemon`')
  })

  it('formats byte counts', () => {
    expect(formatBytes(512)).toBe('512 B')
    expect(formatBytes(1536)).toBe('1.5 KiB')
    expect(formatBytes(5n * 1024n ** 3n)).toBe('5.0 GiB')
  })
})
