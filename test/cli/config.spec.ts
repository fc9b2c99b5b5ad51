import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { run } from './helpers.ts'

describe('init and config (local commands)', () => {
  let dir: string
  let repo: string

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pinbox-cli-config-'))
    repo = join(dir, 'repo')
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('init creates a repo with a peer id, a token and the chosen profile; a second init fails', async () => {
    const res = await run(['--repo', repo, 'init', '--profile', 'kubo-v0'])
    expect(res.code).toBe(0)
    expect(res.stderr).toBe('')
    expect(res.stdout).toMatch(/peer id: 12D3KooW\w+/)
    expect((await stat(join(repo, 'api.token'))).mode & 0o777).toBe(0o600)
    expect(JSON.parse(await readFile(join(repo, 'config.json'), 'utf8')).import.profile).toBe('kubo-v0')

    const again = await run(['--repo', repo, 'init'])
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/^Error: .*already exists.*\n$/)
  })

  it('init takes PINBOX_HOME and prints JSON with --json', async () => {
    const res = await run(['init', '--json'], { env: { PINBOX_HOME: repo } })
    expect(res.code).toBe(0)
    const data = JSON.parse(res.stdout)
    expect(data).toMatchObject({ path: repo, profile: 'unixfs-v1-2025' })
    expect(data.peerId).toMatch(/^12D3KooW/)
  })

  it('init refuses an unknown profile', async () => {
    const res = await run(['--repo', repo, 'init', '--profile', 'fast'])
    expect(res.code).toBe(1)
    expect(res.stderr).toMatch(/^Error: unknown profile "fast"/)
  })

  it('config get/set/show round-trip through config.json', async () => {
    expect((await run(['--repo', repo, 'init'])).code).toBe(0)
    const port = await run(['--repo', repo, 'config', 'get', 'api.port'])
    expect(port).toMatchObject({ code: 0, stdout: '5101\n', stderr: '' })

    const set = await run(['--repo', repo, 'config', 'set', 'api.port', '5222'])
    expect(set.code).toBe(0)
    expect(set.stdout).toBe('api.port = 5222\n')
    expect(JSON.parse(await readFile(join(repo, 'config.json'), 'utf8')).api.port).toBe(5222)

    expect((await run(['--repo', repo, 'config', 'set', 'storage.max', '5GB'])).code).toBe(0)
    expect((await run(['--repo', repo, 'config', 'set', 'swarm.listen', '["/ip4/127.0.0.1/tcp/0"]'])).code).toBe(0)
    const show = await run(['--repo', repo, '--json', 'config', 'show'])
    const cfg = JSON.parse(show.stdout)
    expect(cfg.api.port).toBe(5222)
    expect(cfg.storage.max).toBe('5GB')
    expect(cfg.swarm.listen).toEqual(['/ip4/127.0.0.1/tcp/0'])

    const section = await run(['--repo', repo, '--json', 'config', 'get', 'storage'])
    expect(JSON.parse(section.stdout)).toEqual({ key: 'storage', value: cfg.storage })
  })

  it('a bad key or value exits 1 with one line naming the key and leaves the file unchanged', async () => {
    expect((await run(['--repo', repo, 'init'])).code).toBe(0)
    const before = await readFile(join(repo, 'config.json'), 'utf8')

    for (const [args, key] of [
      [['config', 'set', 'api.port', '70000'], 'api.port'],
      [['config', 'set', 'storage.max', 'lots'], 'storage.max'],
      [['config', 'set', 'api.nope', '1'], 'api.nope'],
      [['config', 'get', 'gateway.colour'], 'gateway.colour']
    ] as const) {
      const res = await run(['--repo', repo, ...args])
      expect(res.code).toBe(1)
      expect(res.stdout).toBe('')
      const lines = res.stderr.split('\n').filter((l) => l !== '')
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(/^Error: /)
      expect(lines[0]).toContain(key)
    }
    expect(await readFile(join(repo, 'config.json'), 'utf8')).toBe(before)
  })

  it('config on a missing repo says to run init', async () => {
    const res = await run(['--repo', repo, 'config', 'show'])
    expect(res.code).toBe(1)
    expect(res.stderr).toMatch(/^Error: no pinbox repo at .*pinbox init/)
  })
})
