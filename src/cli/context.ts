import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { ApiError, ApiTimeoutError, BadResponseError, DaemonNotRunningError, InvalidArgumentError } from './errors.ts'

export const DEFAULT_API_URL = 'http://127.0.0.1:5101'

/** Where the CLI reads and writes; tests pass their own so that `main()` runs in-process. */
export interface CliIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean }
  stderr: NodeJS.WritableStream & { isTTY?: boolean }
  stdin: NodeJS.ReadableStream & { isTTY?: boolean }
  env: Record<string, string | undefined>
}

/** The flags defined once on the root command. */
export interface GlobalOptions {
  repo?: string
  api?: string
  json?: boolean
  timeout?: string
  debug?: boolean
}

export type RpcArgValue = string | number | bigint | boolean | undefined | null | Array<string>
export type RpcArgs = Record<string, RpcArgValue>

export interface RpcBody {
  stream: ReadableStream<Uint8Array>
  contentType: string
}

export interface RpcOptions {
  body?: RpcBody
  signal?: AbortSignal
}

export interface RpcClient {
  readonly apiUrl: string
  /** One JSON reply. */
  call<T = unknown>(path: string, args?: RpcArgs, options?: RpcOptions): Promise<T>
  /** A reply of newline-delimited JSON values, yielded as they arrive. */
  ndjson<T = unknown>(path: string, args?: RpcArgs, options?: RpcOptions): AsyncGenerator<T>
  /** A raw byte reply (cat, get, dag export, block get). */
  stream(path: string, args?: RpcArgs, options?: RpcOptions): AsyncGenerator<Uint8Array>
}

export interface RpcClientInit {
  apiUrl: string
  token?: string
  timeoutMs?: number
  /** Appended to 401/403 errors so the user knows which token was sent. */
  tokenHint?: string
}

export interface Context {
  io: CliIO
  repoPath: string
  json: boolean
  debug: boolean
  timeoutMs?: number
  /** The daemon's RPC client; resolved on first use so local commands never read the API settings. */
  api(): Promise<RpcClient>
}

export function resolveRepoPath (flag: string | undefined, env: Record<string, string | undefined>): string {
  const raw = flag ?? env.PINBOX_HOME ?? join(homedir(), '.pinbox')
  if (raw === '~' || raw.startsWith('~/')) return join(homedir(), raw.slice(1))
  return resolve(raw)
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** Go-style durations as Kubo takes them (`30s`, `1m30s`, `500ms`); a bare number means seconds. */
export function parseDuration (text: string): number {
  const trimmed = text.trim()
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000)
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy
  let total = 0
  let consumed = 0
  for (const match of trimmed.matchAll(re)) {
    total += Number(match[1]) * (UNITS[match[2] ?? ''] ?? 0)
    consumed += match[0].length
  }
  if (trimmed === '' || consumed !== trimmed.length || total <= 0) {
    throw new InvalidArgumentError(`invalid duration "${text}" (use e.g. 500ms, 30s, 1m30s, 2h)`)
  }
  return Math.round(total)
}

/** `--api`, else the repo's configured API address, else the default port on loopback. */
export async function resolveApiUrl (flag: string | undefined, repoPath: string): Promise<string> {
  if (flag != null) return normaliseApiUrl(flag)
  try {
    // a running daemon writes the address it really listens on (it may be port 0 in config)
    const running = (await readFile(join(repoPath, 'api'), 'utf8')).trim()
    if (running !== '') return normaliseApiUrl(running)
  } catch {
    // no daemon has written one: fall back to the configured address
  }
  try {
    const cfg = JSON.parse(await readFile(join(repoPath, 'config.json'), 'utf8')) as { api?: { host?: unknown, port?: unknown } }
    const host = typeof cfg.api?.host === 'string' ? cfg.api.host : '127.0.0.1'
    const port = cfg.api?.port
    if (typeof port === 'number' || typeof port === 'string') {
      // A daemon bound to every interface is still reached over loopback from this box.
      const target = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host
      return `http://${target.includes(':') ? `[${target}]` : target}:${port}`
    }
  } catch {
    // No repo or no readable config: the default address is the best guess.
  }
  return DEFAULT_API_URL
}

function normaliseApiUrl (raw: string): string {
  const withScheme = /^[a-z]+:\/\//i.test(raw) ? raw : `http://${raw}`
  let url: URL
  try {
    url = new URL(withScheme)
  } catch {
    throw new InvalidArgumentError(`invalid --api URL "${raw}"`)
  }
  return url.origin
}

export async function readToken (repoPath: string): Promise<string | undefined> {
  try {
    const token = (await readFile(join(repoPath, 'api.token'), 'utf8')).trim()
    return token === '' ? undefined : token
  } catch {
    return undefined
  }
}

export function createContext (opts: GlobalOptions, io: CliIO): Context {
  const repoPath = resolveRepoPath(opts.repo, io.env)
  const timeoutMs = opts.timeout != null ? parseDuration(opts.timeout) : undefined
  let client: Promise<RpcClient> | undefined
  const ctx: Context = {
    io,
    repoPath,
    json: opts.json === true,
    debug: opts.debug === true,
    api: async () => {
      client ??= (async () => {
        const init: RpcClientInit = {
          apiUrl: await resolveApiUrl(opts.api, repoPath),
          tokenHint: join(repoPath, 'api.token')
        }
        const token = await readToken(repoPath)
        if (token != null) init.token = token
        if (timeoutMs != null) init.timeoutMs = timeoutMs
        return createRpcClient(init)
      })()
      return client
    }
  }
  if (timeoutMs != null) ctx.timeoutMs = timeoutMs
  return ctx
}

/** Kubo passes every argument in the query string; arrays become repeated keys (`arg=a&arg=b`). */
export function buildUrl (apiUrl: string, path: string, args: RpcArgs = {}): string {
  const url = new URL(`/api/v0/${path.replace(/^\/+/, '')}`, apiUrl)
  for (const [key, value] of Object.entries(args)) {
    if (value == null) continue
    if (Array.isArray(value)) {
      for (const v of value) url.searchParams.append(key, v)
    } else {
      url.searchParams.append(key, String(value))
    }
  }
  return url.toString()
}

const NOT_RUNNING_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'EADDRNOTAVAIL', 'ENETUNREACH', 'EAI_AGAIN'])

function connectErrorCode (err: unknown): string | undefined {
  // undici wraps the socket error in `cause`; with happy-eyeballs it is an AggregateError of them.
  const cause = (err as { cause?: unknown })?.cause as { code?: string, errors?: Array<{ code?: string }> } | undefined
  if (cause == null) return undefined
  if (typeof cause.code === 'string') return cause.code
  return cause.errors?.find((e) => typeof e.code === 'string')?.code
}

async function errorFromResponse (res: Response, tokenHint?: string): Promise<ApiError> {
  const text = await res.text().catch(() => '')
  let message = text.trim() === '' ? `HTTP ${res.status} ${res.statusText}` : text.trim()
  let apiCode: string | undefined
  try {
    const body = JSON.parse(text) as { Message?: unknown, Code?: unknown, code?: unknown }
    if (typeof body.Message === 'string') message = body.Message
    if (typeof body.code === 'string') apiCode = body.code
  } catch {
    // A plain-text error body (e.g. from a proxy) is shown as it is.
  }
  if ((res.status === 401 || res.status === 403) && tokenHint != null) {
    message = `${message} (the API token is read from ${tokenHint})`
  }
  return new ApiError(message, res.status, apiCode)
}

function isStreamedError (value: unknown): value is { Message: string, Code?: number } {
  return typeof value === 'object' && value != null &&
    (value as { Type?: unknown }).Type === 'error' && typeof (value as { Message?: unknown }).Message === 'string'
}

export function createRpcClient (init: RpcClientInit): RpcClient {
  const { apiUrl } = init

  function describeTimeout (): ApiTimeoutError {
    return new ApiTimeoutError(`no complete answer from the daemon within ${init.timeoutMs ?? 0} ms`)
  }

  function translate (err: unknown, signal: AbortSignal): unknown {
    if (signal.aborted && (signal.reason as { name?: string } | undefined)?.name === 'TimeoutError') return describeTimeout()
    const code = connectErrorCode(err)
    if (code != null && NOT_RUNNING_CODES.has(code)) return new DaemonNotRunningError(apiUrl, { cause: err })
    // undici's "fetch failed" says nothing by itself; its cause says what went wrong.
    const cause = (err as { cause?: unknown })?.cause
    if (err instanceof TypeError && err.message === 'fetch failed' && cause instanceof Error) {
      return new ApiError(`cannot reach the daemon at ${apiUrl}: ${cause.message}`, 0)
    }
    return err
  }

  function signalFor (options: RpcOptions): AbortSignal {
    const signals: AbortSignal[] = []
    if (options.signal != null) signals.push(options.signal)
    if (init.timeoutMs != null) signals.push(AbortSignal.timeout(init.timeoutMs))
    return signals.length === 0 ? new AbortController().signal : AbortSignal.any(signals)
  }

  async function request (path: string, args: RpcArgs | undefined, options: RpcOptions, signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = {}
    if (init.token != null) headers.authorization = `Bearer ${init.token}`
    const reqInit: RequestInit & { duplex?: 'half' } = { method: 'POST', headers, signal }
    if (options.body != null) {
      headers['content-type'] = options.body.contentType
      reqInit.body = options.body.stream
      // Required by fetch for a streamed request body.
      reqInit.duplex = 'half'
      // Without both, fetch clones the request to be able to follow a redirect, and the clone's
      // unread tee branch keeps every chunk sent: a 1 GiB add held 1.1 GB in the CLI.
      reqInit.window = null
      reqInit.redirect = 'error'
    }
    let res: Response
    try {
      res = await fetch(buildUrl(apiUrl, path, args), reqInit)
    } catch (err) {
      throw translate(err, signal)
    }
    if (!res.ok) throw await errorFromResponse(res, init.tokenHint)
    return res
  }

  async function * bytes (path: string, args: RpcArgs | undefined, options: RpcOptions): AsyncGenerator<Uint8Array> {
    const signal = signalFor(options)
    const res = await request(path, args, options, signal)
    if (res.body == null) return
    try {
      for await (const chunk of res.body) yield chunk
    } catch (err) {
      const translated = translate(err, signal)
      if (translated !== err || signal.aborted) throw translated
      // The daemon hit an error after it had started answering and closed the connection.
      throw new ApiError(`the daemon broke off its reply (${err instanceof Error ? err.message : String(err)}); see the daemon log`, 0)
    }
  }

  async function * ndjson<T> (path: string, args: RpcArgs | undefined, options: RpcOptions = {}): AsyncGenerator<T> {
    const decoder = new TextDecoder()
    let buffered = ''
    const parse = (line: string): T => {
      let value: unknown
      try {
        value = JSON.parse(line)
      } catch {
        throw new BadResponseError(`the daemon sent a line that is not JSON: ${line.slice(0, 120)}`)
      }
      // Kubo reports an error that happens mid-stream as one more JSON value of Type "error".
      if (isStreamedError(value)) throw new ApiError(value.Message, 500)
      return value as T
    }
    for await (const chunk of bytes(path, args, options)) {
      buffered += decoder.decode(chunk, { stream: true })
      let nl: number
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, nl).trim()
        buffered = buffered.slice(nl + 1)
        if (line !== '') yield parse(line)
      }
    }
    buffered += decoder.decode()
    if (buffered.trim() !== '') yield parse(buffered.trim())
  }

  return {
    apiUrl,
    async call<T> (path: string, args?: RpcArgs, options: RpcOptions = {}): Promise<T> {
      const signal = signalFor(options)
      const res = await request(path, args, options, signal)
      let text: string
      try {
        text = await res.text()
      } catch (err) {
        throw translate(err, signal)
      }
      if (text.trim() === '') return undefined as T
      try {
        return JSON.parse(text) as T
      } catch {
        throw new BadResponseError(`the daemon sent a reply that is not JSON: ${text.slice(0, 120)}`)
      }
    },
    ndjson,
    stream: (path, args, options = {}) => bytes(path, args, options)
  }
}

/** Writes a byte stream to an output, waiting for drain so a slow pipe never fills memory. */
export async function writeAll (out: NodeJS.WritableStream, source: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const chunk of source) {
    if (!out.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => { cleanup(); resolve() }
        const onError = (err: Error): void => { cleanup(); reject(err) }
        const cleanup = (): void => { out.off('drain', onDrain); out.off('error', onError) }
        out.on('drain', onDrain)
        out.on('error', onError)
      })
    }
  }
}
