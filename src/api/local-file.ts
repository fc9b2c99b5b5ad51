import fs from 'node:fs/promises'
import { isIP } from 'node:net'
import { PinboxError } from '../errors.ts'
import type { Socket } from 'node:net'

/**
 * A local `pinbox add FILE` hands the daemon the file it has open instead of sending its bytes
 * through the loopback socket: the request names `<pid>:<fd>` and the daemon opens
 * `/proc/<pid>/fd/<fd>` itself.
 *
 * Why: over HTTP every byte is read by the CLI, copied through the loopback TCP stack and parsed
 * out of multipart by the daemon; measured on a 1 GiB add that upload alone capped the add at
 * ~1.1 s (an `--only-hash` add, which writes nothing) and cost the CLI 0.8 CPU-s, on 2 cores
 * shared with the hashing and the writes.
 *
 * Who may do it: only a process that already has the daemon's own rights. The daemon accepts the
 * claim only when (1) the connection comes from a loopback address, (2) the socket of that very
 * connection is one of the named process's open files (found through /proc/net/tcp and
 * /proc/<pid>/fd, which Linux lets a process read only for processes of its own user), and (3)
 * the named descriptor is a regular file. So the daemon reads nothing that the caller could not
 * already read with the daemon's user, and a remote token holder cannot name anyone's files.
 * Anywhere this does not hold (another user, a container, not Linux) the claim is refused with
 * ERR_LOCAL_FILE_REFUSED and the CLI sends the bytes over HTTP as before.
 */
export class LocalFileRefusedError extends PinboxError {
  constructor (reason: string) {
    super('ERR_LOCAL_FILE_REFUSED', `the local file hand-over was refused: ${reason}`)
  }
}

export interface LocalFileClaim {
  pid: number
  fd: number
}

/** Parses `<pid>:<fd>`. */
export function parseLocalFileClaim (text: string): LocalFileClaim {
  const m = /^(\d{1,10}):(\d{1,10})$/.exec(text)
  const pid = Number(m?.[1])
  const fd = Number(m?.[2])
  if (m == null || pid < 1 || !Number.isSafeInteger(pid) || !Number.isSafeInteger(fd)) {
    throw new LocalFileRefusedError(`"${text}" is not <pid>:<fd>`)
  }
  return { pid, fd }
}

function isLoopback (address: string | undefined): boolean {
  if (address == null) return false
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address
  if (isIP(v4) === 4) return v4.startsWith('127.')
  return address === '::1'
}

/** The hex port of a /proc/net/tcp address (`0100007F:1F90`). */
function portOf (address: string | undefined): number {
  return parseInt(address?.split(':').pop() ?? '', 16)
}

/** The inode of the client's end of `socket`, from the kernel's socket tables. */
async function clientSocketInode (socket: Socket): Promise<string | undefined> {
  const clientPort = socket.remotePort
  const serverPort = socket.localPort
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string
    try {
      text = await fs.readFile(table, 'utf8')
    } catch {
      continue
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const cols = line.trim().split(/\s+/)
      if (cols.length < 10) continue
      if (portOf(cols[1]) === clientPort && portOf(cols[2]) === serverPort && cols[9] !== '0') return cols[9]
    }
  }
  return undefined
}

/** Whether `pid` holds the socket `inode` among its open files. */
async function holdsSocket (pid: number, inode: string): Promise<boolean> {
  const dir = `/proc/${pid}/fd`
  let fds: string[]
  try {
    fds = await fs.readdir(dir)
  } catch {
    return false
  }
  const wanted = `socket:[${inode}]`
  for (const fd of fds) {
    try {
      if (await fs.readlink(`${dir}/${fd}`) === wanted) return true
    } catch {
      // closed meanwhile
    }
  }
  return false
}

/**
 * Opens, read-only, the regular file (or, with `directories`, the folder) that the process on the
 * other end of `socket` holds as `claim.fd`. Throws LocalFileRefusedError when any check fails; the
 * caller then expects the bytes in the request body instead. A folder is walked through
 * `/proc/self/fd/<the returned handle>`: its entries are read with the daemon's rights, symlinks
 * are kept as symlinks (never followed), so nothing outside the folder is read.
 */
export async function openClientFile (socket: Socket, claim: LocalFileClaim, options: { directories?: boolean } = {}): Promise<fs.FileHandle> {
  if (process.platform !== 'linux') throw new LocalFileRefusedError('only on Linux')
  if (!isLoopback(socket.remoteAddress)) throw new LocalFileRefusedError('the client is not on this machine')
  const inode = await clientSocketInode(socket)
  if (inode == null || !await holdsSocket(claim.pid, inode)) {
    throw new LocalFileRefusedError(`process ${claim.pid} is not this request's client, or runs as another user`)
  }
  let handle: fs.FileHandle
  try {
    handle = await fs.open(`/proc/${claim.pid}/fd/${claim.fd}`, fs.constants.O_RDONLY)
  } catch (err: any) {
    throw new LocalFileRefusedError(`cannot open descriptor ${claim.fd} of process ${claim.pid} (${err?.code ?? err})`)
  }
  try {
    const st = await handle.stat()
    if (!st.isFile() && !(options.directories === true && st.isDirectory())) {
      throw new LocalFileRefusedError(`descriptor ${claim.fd} is not a regular file${options.directories === true ? ' or a folder' : ''}`)
    }
  } catch (err) {
    await handle.close()
    throw err
  }
  return handle
}
