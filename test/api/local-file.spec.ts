import { execFile } from 'node:child_process'
import { constants } from 'node:fs'
import { mkdir, open, readFile, symlink, writeFile } from 'node:fs/promises'
import { connect, createServer } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startDaemon, stopAll, tempDir } from '../helpers/daemon.ts'
import type { Daemon } from '../helpers/daemon.ts'
import type { AddressInfo } from 'node:net'

/**
 * The local hand-over (src/api/local-file.ts): a `pinbox add FILE` on the daemon's machine names
 * the file it holds open and the daemon reads it itself. The daemon's upload limit is set far
 * below the file, so an add that still succeeds can only have gone the local way.
 */
describe('add: local file hand-over', () => {
  let d: Daemon
  let dir: string
  let file: string
  const bytes = Buffer.alloc(3 * 1024 * 1024 + 123, 0)
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) % 251

  beforeAll(async () => {
    dir = await tempDir('pinbox-local-file-')
    file = join(dir, 'big.bin')
    await writeFile(file, bytes)
    d = await startDaemon({ config: { 'api.maxBodyBytes': 64 * 1024 } })
  })
  afterAll(stopAll)

  async function addCall (claim: string, token = d.token): Promise<{ status: number, body: any }> {
    const res = await fetch(`${d.apiUrl}/add?local-fd=${encodeURIComponent(claim)}&local-name=big.bin&pin=false`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` }
    })
    const text = await res.text()
    return { status: res.status, body: res.status === 200 ? text.trim().split('\n').map(l => JSON.parse(l)) : JSON.parse(text) }
  }

  it('the CLI hands the daemon its open file: a file far over the upload limit is added, with the CID of an upload', async () => {
    const local = await d.json<{ root: string, entries: Array<{ name: string }> }>(['add', file])
    expect(local.entries[0]?.name).toBe('big.bin')
    const pinned = await d.json<any>(['pin', 'ls', '--type', 'recursive'])
    expect(JSON.stringify(pinned)).toContain(local.root)
    const out = join(dir, 'back.bin')
    const back = await d.cli(['get', local.root, '-o', out])
    expect(back.code, back.stderr).toBe(0)
    expect((await readFile(out)).equals(bytes)).toBe(true)

    // the same bytes as an upload are refused by the limit...
    const upload = await d.cli(['add', '--no-local', file])
    expect(upload.code).not.toBe(0)
    expect(upload.stderr).toMatch(/too large/)
    // ...and, as stdin under the limit, give the CIDs an upload gives
    const head = bytes.subarray(0, 60_000)
    await writeFile(join(dir, 'head.bin'), head)
    const viaLocal = await d.json<{ root: string }>(['add', '-n', join(dir, 'head.bin')])
    const viaUpload = await d.json<{ root: string }>(['add', '-n', '-'], { stdin: head })
    expect(viaLocal.root).toBe(viaUpload.root)
  })

  it('the CLI hands over a folder with -r: the daemon walks it (a file in it far over the upload limit too), with the CIDs of an upload', async () => {
    // small enough to upload under the limit: hidden files, a symlink, an empty folder, nesting
    const tree = join(dir, 'tree')
    await mkdir(join(tree, 'sub', 'deeper'), { recursive: true })
    await mkdir(join(tree, 'empty'))
    await mkdir(join(tree, '.hidden'))
    await writeFile(join(tree, 'a.txt'), 'a')
    await writeFile(join(tree, 'sub', 'deeper', 'b.bin'), bytes.subarray(0, 20_000))
    await writeFile(join(tree, '.hidden', 'h.txt'), 'h')
    await writeFile(join(tree, '.dot'), 'dot')
    await symlink('../a.txt', join(tree, 'sub', 'link'))
    for (const flags of [[], ['-H'], ['-w']]) {
      const local = await d.json<{ root: string, entries: Array<{ name: string, cid: string }> }>(['add', '-r', '-n', ...flags, tree])
      const upload = await d.json<{ root: string, entries: Array<{ name: string, cid: string }> }>(['add', '-r', '-n', '--no-local', ...flags, tree])
      expect(local, flags.join(' ')).toEqual(upload)
    }
    // the symlink is a UnixFS symlink on both paths, not a file holding its target
    const listed = await d.json<{ root: string }>(['add', '-r', tree])
    const ls = await d.cli(['ls', `${listed.root}/sub`])
    expect(ls.stdout).toMatch(/link/)
    const link = await d.json<any>(['ls', '--json', `${listed.root}/sub`])
    expect(JSON.stringify(link)).toMatch(/"(?:type|Type)":\s*(?:"symlink"|4)/)

    // a folder holding a file 48x over the upload limit goes only the local way; the upload is
    // refused with the daemon's answer, not a cut connection (the daemon drains the rest first)
    await writeFile(join(tree, 'big.bin'), bytes)
    const big = await d.json<{ root: string }>(['add', '-r', tree])
    expect(big.root).toMatch(/^bafy/)
    const refused = await d.cli(['add', '-r', '--no-local', tree])
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toMatch(/too large/)
  })

  it('the CLI sends the bytes instead when the daemon refuses (its connection goes through another process)', async () => {
    // a TCP relay in this test process: the daemon's client is then this process, not the CLI
    const relay = createServer((inbound) => {
      const outbound = connect(Number(new URL(d.apiUrl).port), '127.0.0.1')
      inbound.pipe(outbound).pipe(inbound)
      inbound.on('error', () => outbound.destroy())
      outbound.on('error', () => inbound.destroy())
    })
    await new Promise<void>(resolve => relay.listen(0, '127.0.0.1', resolve))
    const api = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`
    try {
      const small = join(dir, 'small.bin')
      await writeFile(small, bytes.subarray(0, 1000))
      const viaRelay = await d.json<{ root: string }>(['--api', api, 'add', '-n', small])
      const direct = await d.json<{ root: string }>(['add', '-n', small])
      expect(viaRelay.root).toBe(direct.root)
      // the big file now goes as an upload, which the daemon's limit refuses
      const big = await d.cli(['--api', api, 'add', file])
      expect(big.code).not.toBe(0)
      expect(big.stderr).toMatch(/too large/)
    } finally {
      relay.close()
    }
  })

  it('accepts a claim from the process that holds both the connection and the file', async () => {
    const handle = await open(file, 'r')
    try {
      const res = await addCall(`${process.pid}:${handle.fd}`)
      expect(res.status).toBe(200)
      expect(res.body.at(-1)).toMatchObject({ Name: 'big.bin', Size: expect.any(String) })
    } finally {
      await handle.close()
    }
  })

  it('refuses a claim on another process\'s files (the daemon\'s own), a pipe, a bad claim, and a caller without the token', async () => {
    const other = await addCall(`${d.pid}:0`)
    expect(other.status).toBe(403)
    expect(other.body.code).toBe('ERR_LOCAL_FILE_REFUSED')
    expect(other.body.Message).toMatch(new RegExp(`process ${d.pid} is not this request's client`))

    // a FIFO held open for reading and writing (so opening it does not wait for a writer)
    const fifo = join(dir, 'fifo')
    await promisify(execFile)('mkfifo', [fifo])
    const pipe = await open(fifo, constants.O_RDWR)
    try {
      const res = await addCall(`${process.pid}:${pipe.fd}`)
      expect(res.status).toBe(403)
      expect(res.body.Message).toMatch(/is not a regular file or a folder/)
    } finally {
      await pipe.close()
    }

    const closed = await addCall(`${process.pid}:999999`)
    expect(closed.status).toBe(403)
    expect(closed.body.Message).toMatch(/cannot open descriptor 999999/)

    const bad = await addCall('../../etc/passwd')
    expect(bad.status).toBe(403)
    expect(bad.body.Message).toMatch(/is not <pid>:<fd>/)

    const handle = await open(file, 'r')
    try {
      expect((await addCall(`${process.pid}:${handle.fd}`, 'wrong-token')).status).toBe(401)
    } finally {
      await handle.close()
    }
  })
})
