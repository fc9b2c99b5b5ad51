import { describe, expect, it } from 'vitest'
import { commandOf, daemonExecPlan, HEAP_GROWING_PERCENT, MALLOC_ARENAS, MARKING_HARD_TRIGGER, MARKING_SOFT_TRIGGER, SEMI_SPACE_MB, TUNED_ENV } from '../../src/cli/daemon-runtime.ts'

const triggers = [`--incremental-marking-soft-trigger=${MARKING_SOFT_TRIGGER}`, `--incremental-marking-hard-trigger=${MARKING_HARD_TRIGGER}`]

const facts = (args: string[], env: Record<string, string | undefined> = {}, execArgv: string[] = []) => ({
  execPath: '/usr/bin/node',
  execArgv,
  argv: ['/usr/bin/node', '/opt/pinbox/bin/pinbox.js', ...args],
  env: { PATH: '/usr/bin', ...env }
})

describe('commandOf', () => {
  it('skips global options and the values they take', () => {
    expect(commandOf(['daemon'])).toBe('daemon')
    expect(commandOf(['--repo', 'daemon', 'add', 'x'])).toBe('add')
    expect(commandOf(['--repo', '/r', '--json', '--api', 'http://x', '--timeout', '5s', 'daemon'])).toBe('daemon')
    expect(commandOf(['--debug'])).toBeUndefined()
    expect(commandOf(['--', 'daemon'])).toBe('daemon')
  })
})

describe('daemonExecPlan', () => {
  it('restarts `pinbox daemon` with the young-generation cap, the heap growth and marking triggers, and two malloc arenas, keeping every argument', () => {
    const plan = daemonExecPlan(facts(['--repo', '/r', 'daemon', '--init-if-missing'], {}, ['--enable-source-maps']))
    expect(plan?.args).toEqual(['/usr/bin/node', '--enable-source-maps', `--max-semi-space-size=${SEMI_SPACE_MB}`, `--heap-growing-percent=${HEAP_GROWING_PERCENT}`, ...triggers, '/opt/pinbox/bin/pinbox.js', '--repo', '/r', 'daemon', '--init-if-missing'])
    expect(plan?.env).toMatchObject({ PATH: '/usr/bin', MALLOC_ARENA_MAX: MALLOC_ARENAS, [TUNED_ENV]: '1' })
  })

  it('never restarts twice, nor any other command', () => {
    expect(daemonExecPlan(facts(['daemon'], { [TUNED_ENV]: '1' }))).toBeUndefined()
    expect(daemonExecPlan(facts(['add', 'daemon']))).toBeUndefined()
    expect(daemonExecPlan(facts(['--repo', 'daemon', 'id']))).toBeUndefined()
  })

  it('keeps a size and an arena count the user chose', () => {
    const plan = daemonExecPlan(facts(['daemon'], { NODE_OPTIONS: '--max-semi-space-size=32', MALLOC_ARENA_MAX: '4' }, ['--incremental-marking-soft-trigger=50']))
    expect(plan?.args).toEqual(['/usr/bin/node', '--incremental-marking-soft-trigger=50', `--heap-growing-percent=${HEAP_GROWING_PERCENT}`, `--incremental-marking-hard-trigger=${MARKING_HARD_TRIGGER}`, '/opt/pinbox/bin/pinbox.js', 'daemon'])
    expect(plan?.env.MALLOC_ARENA_MAX).toBe('4')
  })
})
