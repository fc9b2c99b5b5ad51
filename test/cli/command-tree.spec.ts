import { PassThrough, Readable } from 'node:stream'
import type { Command } from 'commander'
import { describe, expect, it } from 'vitest'
import { examplesOf } from '../../src/cli/help.ts'
import { buildProgram } from '../../src/cli/main.ts'
import { run } from './helpers.ts'

function walk (cmd: Command, prefix = ''): Array<{ name: string, cmd: Command }> {
  const name = prefix === '' ? cmd.name() : `${prefix} ${cmd.name()}`
  return [{ name, cmd }, ...cmd.commands.flatMap((c) => walk(c, name))]
}

function program (): Command {
  return buildProgram({ io: { stdout: new PassThrough(), stderr: new PassThrough(), stdin: Readable.from([]), env: {} }, exitCode: 0 })
}

describe('command tree', () => {
  const all = walk(program())

  it('has every command of the brief', () => {
    const names = all.map((c) => c.name)
    for (const expected of [
      'pinbox init', 'pinbox config get', 'pinbox config set', 'pinbox config show', 'pinbox daemon', 'pinbox add',
      'pinbox cat', 'pinbox get', 'pinbox ls', 'pinbox pin add', 'pinbox pin ls', 'pinbox pin rm', 'pinbox pin verify',
      'pinbox pin update', 'pinbox repo stat', 'pinbox repo gc', 'pinbox dag export', 'pinbox dag import',
      'pinbox block get', 'pinbox block put', 'pinbox block stat', 'pinbox id', 'pinbox version', 'pinbox swarm peers'
    ]) {
      expect(names).toContain(expected)
    }
  })

  it.each(all.map((c) => [c.name, c.cmd] as const))('%s has a description and an example', (_name, cmd) => {
    expect(cmd.description().trim().length).toBeGreaterThan(10)
    const examples = examplesOf(cmd)
    expect(examples.length).toBeGreaterThan(0)
    // An example must actually run this command (`pinbox … <name> …`), not a sibling.
    const pattern = cmd.parent == null ? /\bpinbox\b/ : new RegExp(`\\bpinbox\\b.*\\b${cmd.name()}\\b`)
    for (const ex of examples) expect(ex).toMatch(pattern)
  })

  it('puts the global flags on the root only', () => {
    const root = program()
    const flags = root.options.map((o) => o.long)
    expect(flags).toEqual(expect.arrayContaining(['--repo', '--api', '--json', '--timeout', '--debug']))
    for (const { cmd } of walk(root).slice(1)) {
      expect(cmd.options.map((o) => o.long)).not.toContain('--repo')
    }
  })

  it('shows examples in --help and exits 0', async () => {
    const res = await run(['add', '--help'])
    expect(res.code).toBe(0)
    expect(res.stdout).toContain('Examples:')
    expect(res.stdout).toContain('$ pinbox add -r ./photos')
  })

  it('exits 2 with one "Error:" line on bad usage', async () => {
    const res = await run(['pin', 'add'])
    expect(res.code).toBe(2)
    expect(res.stderr.split('\n')[0]).toMatch(/^Error: missing required argument/)
    const unknown = await run(['frobnicate'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toMatch(/^Error: unknown command 'frobnicate'/)
  })
})
