import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { startDaemon, stopAll, tempDir } from '../helpers/daemon.ts'

// The daemon mounts the IPFS Pinning Service API on its API port, over local pins when the box
// has no pool: what `ipfs pin remote service add` points at.
describe('daemon: Pinning Service API', () => {
  afterAll(stopAll)

  it('serves /pins with the API token and pins the requested CID', async () => {
    const d = await startDaemon()
    const dir = await tempDir()
    const file = join(dir, 'f.txt')
    await writeFile(file, 'pinned through the pinning service api\n')
    const cid = (await d.cli(['add', '-q', '--pin=false', file])).stdout.trim()
    const base = d.apiUrl.replace(/\/api\/v0$/, '')

    const unauth = await fetch(`${base}/pins`)
    expect(unauth.status).toBe(401)

    const res = await fetch(`${base}/pins`, {
      method: 'POST',
      headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ cid, name: 'psa' })
    })
    expect(res.status).toBe(202)
    const status = await res.json() as { requestid: string, status: string }
    expect(status.status).toBe('pinned')

    const list = await (await fetch(`${base}/pins?name=psa`, { headers: { authorization: `Bearer ${d.token}` } })).json() as { count: number }
    expect(list.count).toBe(1)
    const pins = await d.json<Array<{ cid: string, type: string }>>(['pin', 'ls', '--type', 'recursive'])
    expect(JSON.stringify(pins)).toContain(cid)
  })
})
