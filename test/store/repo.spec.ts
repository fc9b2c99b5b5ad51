import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import fs from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { Key } from 'interface-datastore'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { itOnTmpfs } from '../helpers/tmpfs.ts'
import { sha256 } from 'multiformats/hashes/sha2'
import { multihashKey } from '../../src/store/blockstore.ts'
import { defaultConfig, setConfigValue } from '../../src/store/config.ts'
import { defaultRepoPath, initRepo, loadConfig, migrateRepo, openRepo, saveConfig } from '../../src/store/repo.ts'
import type { Migration } from '../../src/store/repo.ts'
import type { ChildProcess } from 'node:child_process'

const here = dirname(fileURLToPath(import.meta.url))
const fixture = join(here, 'fixtures', 'hold-repo.ts')

async function codeOf (p: Promise<unknown>): Promise<{ code?: string, message?: string }> {
  try {
    await p
  } catch (err: any) {
    return { code: err.code, message: err.message }
  }
  throw new Error('expected a rejection')
}

/** Starts a process that opens the repo; resolves with its first stdout line, parsed. */
function startHolder (path: string, mode: 'hold' | 'write', children: ChildProcess[]): Promise<{ child: ChildProcess, report: Record<string, string> }> {
  const child = spawn(process.execPath, [fixture, path, mode], { stdio: ['ignore', 'pipe', 'pipe'], cwd: join(here, '..', '..') })
  children.push(child)
  return new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      const nl = out.indexOf('\n')
      if (nl >= 0) resolve({ child, report: JSON.parse(out.slice(0, nl)) })
    })
    child.stderr?.on('data', (d: Buffer) => { err += d.toString() })
    child.on('exit', (code) => { reject(new Error(`holder exited with ${code}: ${err}`)) })
  })
}

function kill9 (child: ChildProcess): Promise<void> {
  return new Promise(resolve => {
    if (child.exitCode != null || child.signalCode != null) {
      resolve()
      return
    }
    child.once('exit', () => { resolve() })
    child.kill('SIGKILL')
  })
}

describe('repo', () => {
  let tmp: string
  let path: string
  const children: ChildProcess[] = []

  beforeEach(async () => {
    tmp = await fs.mkdtemp(join(tmpdir(), 'pinbox-repo-'))
    path = join(tmp, 'repo')
  })

  afterEach(async () => {
    await Promise.all(children.splice(0).map(kill9))
    await fs.rm(tmp, { recursive: true, force: true })
  })

  it('initialises the layout with private key and token files only the owner can read', async () => {
    const result = await initRepo(path, { profile: 'kubo-v0' })
    expect(result.created).toBe(true)
    expect(result.peerId.type).toBe('Ed25519')
    expect((await fs.readFile(join(path, 'version'), 'utf8')).trim()).toBe('1')
    expect((await loadConfig(path)).import.profile).toBe('kubo-v0')
    for (const name of ['identity.key', 'api.token']) {
      expect((await fs.stat(join(path, name))).mode & 0o777).toBe(0o600)
    }
    expect(await fs.readFile(join(path, 'api.token'), 'utf8')).toMatch(/^[0-9a-f]{64}\n$/)
    expect(existsSync(join(path, 'datastore', 'CURRENT'))).toBe(true)
    expect(existsSync(join(path, 'blocks'))).toBe(true)

    expect(await codeOf(initRepo(path))).toMatchObject({ code: 'ERR_REPO_EXISTS' })
    const again = await initRepo(path, { reuse: true })
    expect(again.created).toBe(false)
    expect(again.peerId.equals(result.peerId)).toBe(true)
  })

  it('keeps identity, token, blocks and datastore across reopen', async () => {
    const { peerId } = await initRepo(path)
    let repo = await openRepo(path)
    expect(repo.peerId.equals(peerId)).toBe(true)
    expect(repo.privateKey.type).toBe('Ed25519')
    const token = repo.apiToken
    expect(token).toMatch(/^[0-9a-f]{64}$/)
    const bytes = new TextEncoder().encode('kept')
    const cid = CID.createV1(raw.code, await sha256.digest(bytes))
    await repo.blockstore.put(cid, bytes)
    await repo.datastore.put(new Key('/hello'), bytes)
    await repo.db.sublevel<string, string>('pins', {}).put('k', 'v')
    await repo.close()
    await repo.close()

    repo = await openRepo(path)
    expect(repo.peerId.equals(peerId)).toBe(true)
    expect(repo.apiToken).toBe(token)
    expect(await repo.blockstore.has(cid)).toBe(true)
    expect(repo.blockstore.stat()).toEqual({ blocks: 1, bytes: 4 })
    expect(Buffer.from(await repo.datastore.get(new Key('/hello')))).toEqual(Buffer.from(bytes))
    expect(await repo.db.sublevel<string, string>('pins', {}).get('k')).toBe('v')
    await repo.close()
  })

  it('takes storage.max as the quota unless overridden', async () => {
    await initRepo(path)
    await saveConfig(path, setConfigValue(defaultConfig(), 'storage.max', '"5"'))
    const repo = await openRepo(path)
    const bytes = new TextEncoder().encode('too big')
    const cid = CID.createV1(raw.code, await sha256.digest(bytes))
    expect(await codeOf(repo.blockstore.put(cid, bytes))).toMatchObject({ code: 'ERR_QUOTA_EXCEEDED' })
    await repo.close()
    const roomy = await openRepo(path, { maxBytes: 100 })
    await roomy.blockstore.put(cid, bytes)
    await roomy.close()
  })

  it('never creates a missing repo folder on open', async () => {
    const r = await codeOf(openRepo(path))
    expect(r.code).toBe('ERR_REPO_NOT_FOUND')
    expect(r.message).toContain('pinbox init')
    expect(r.message).toContain('mounted')
    expect(existsSync(path)).toBe(false)

    // an empty mount point: still refused, still untouched
    await fs.mkdir(path)
    expect(await codeOf(openRepo(path))).toMatchObject({ code: 'ERR_REPO_NOT_FOUND' })
    expect(await fs.readdir(path)).toEqual([])
  })

  it('refuses a repo newer than the code', async () => {
    await initRepo(path)
    await fs.writeFile(join(path, 'version'), '2\n')
    expect(await codeOf(openRepo(path))).toMatchObject({ code: 'ERR_REPO_VERSION' })
  })

  it('migrates step by step through a migrations table, recording each version', async () => {
    await initRepo(path)
    const repo = await openRepo(path)
    const ran: string[] = []
    const table: Migration[] = [
      { from: 2, to: 3, migrate: async (_p, db) => { ran.push('2->3'); await db.put('m', 'three') } },
      { from: 1, to: 2, migrate: async () => { ran.push('1->2') } }
    ]
    expect(await migrateRepo(path, repo.db, 1, 3, table)).toBe(3)
    expect(ran).toEqual(['1->2', '2->3'])
    expect((await fs.readFile(join(path, 'version'), 'utf8')).trim()).toBe('3')
    expect(await repo.db.get('m')).toBe('three')
    expect(await codeOf(migrateRepo(path, repo.db, 3, 5, table))).toMatchObject({ code: 'ERR_REPO_VERSION' })
    await repo.close()
  })

  it('saves config atomically and refuses an invalid one without touching the file', async () => {
    await initRepo(path)
    const cfg = setConfigValue(defaultConfig(), 'api.port', '6123')
    await saveConfig(path, cfg)
    expect((await loadConfig(path)).api.port).toBe(6123)
    const before = await fs.readFile(join(path, 'config.json'), 'utf8')
    const bad = { ...cfg, api: { ...cfg.api, port: 'x' } } as any
    expect(await codeOf(saveConfig(path, bad))).toMatchObject({ code: 'ERR_CONFIG_INVALID' })
    expect(await fs.readFile(join(path, 'config.json'), 'utf8')).toBe(before)
    expect((await fs.readdir(path)).filter(n => n.endsWith('.tmp'))).toEqual([])
  })

  it('defaults to PINBOX_HOME or ~/.pinbox', () => {
    expect(defaultRepoPath({ PINBOX_HOME: '/srv/pinbox' })).toBe('/srv/pinbox')
    expect(defaultRepoPath({})).toMatch(/\.pinbox$/)
  })

  it('is locked by the OS against a second process, and free again at once after kill -9', async () => {
    await initRepo(path)
    const { child } = await startHolder(path, 'hold', children)
    const r = await codeOf(openRepo(path))
    expect(r.code).toBe('ERR_REPO_LOCKED')
    expect(r.message).toBe(`repo ${path} is in use by another pinbox process (lock held on ${join(path, 'datastore', 'LOCK')})`)
    // in the same process too
    const repo = await openRepo(path).catch(e => e)
    expect(repo.code).toBe('ERR_REPO_LOCKED')

    await kill9(child)
    const after = await openRepo(path)
    await after.close()
  })

  it('recovers after a crash: an unsynced torn block is dropped, the rest kept and recounted', async () => {
    await initRepo(path)
    const { child, report } = await startHolder(path, 'write', children)
    await kill9(child)
    const torn = CID.parse(report.torn ?? '')
    const key = multihashKey(torn)
    await fs.writeFile(join(path, 'blocks', key.slice(-3, -1), `${key}.data`), 'not the right bytes')

    const repo = await openRepo(path)
    expect(await repo.blockstore.has(torn)).toBe(false)
    expect(await repo.blockstore.has(CID.parse(report.synced ?? ''))).toBe(true)
    expect(await repo.blockstore.has(CID.parse(report.whole ?? ''))).toBe(true)
    expect(repo.blockstore.stat()).toEqual({ blocks: 2, bytes: 'synced block'.length + 'unsynced but whole block'.length })
    await repo.close()
  })

  itOnTmpfs('a full disk gives ERR_DISK_FULL naming the path and leaves config and blocks whole', '4m', import.meta.filename, async (path) => {
    await initRepo(path)
    const repo = await openRepo(path)
    const before = await fs.readFile(join(path, 'config.json'), 'utf8')
    // fill the disk
    const filler = await fs.open(join(path, 'filler'), 'w')
    const chunk = Buffer.alloc(64 * 1024, 1)
    try {
      for (;;) await filler.write(chunk)
    } catch (err: any) {
      expect(err.code).toBe('ENOSPC')
    } finally {
      await filler.close()
    }
    const r = await codeOf(saveConfig(path, setConfigValue(defaultConfig(), 'api.port', '6200')))
    expect(r.code).toBe('ERR_DISK_FULL')
    expect(r.message).toContain(join(path, 'config.json'))
    expect(await fs.readFile(join(path, 'config.json'), 'utf8')).toBe(before)

    const bytes = new Uint8Array(256 * 1024).fill(3)
    const cid = CID.createV1(raw.code, await sha256.digest(bytes))
    const p = await codeOf(repo.blockstore.put(cid, bytes))
    expect(p.code).toBe('ERR_DISK_FULL')
    expect(p.message).toContain(path)
    expect(await repo.blockstore.has(cid)).toBe(false)
    const names = await fs.readdir(join(path, 'blocks'), { recursive: true })
    expect(names.filter(n => n.endsWith('.tmp') || n.endsWith('.data'))).toEqual([])
    expect((await fs.readdir(path)).filter(n => n.endsWith('.tmp'))).toEqual([])
    await repo.close().catch(() => {})
    // with space again, the repo opens and works
    await fs.rm(join(path, 'filler'))
    const again = await openRepo(path)
    await again.blockstore.put(cid, bytes)
    expect(await again.blockstore.has(cid)).toBe(true)
    await again.close()
  })
})
