import { PinboxError } from '../errors.ts'

/** No HTTP server answered at the API address: the daemon is not running (or listens elsewhere). */
export class DaemonNotRunningError extends PinboxError {
  readonly apiUrl: string

  constructor (apiUrl: string, options?: ErrorOptions) {
    super('ERR_DAEMON_NOT_RUNNING', `pinbox daemon is not running (no API at ${apiUrl}); start it with \`pinbox daemon\``, options)
    this.apiUrl = apiUrl
  }
}

/** The daemon answered with an error body (`{ Message, Code, Type }`). */
export class ApiError extends PinboxError {
  readonly status: number
  /** The daemon's own error code when it sent one (e.g. `ERR_NOT_FOUND`). */
  readonly apiCode?: string

  constructor (message: string, status: number, apiCode?: string) {
    super('ERR_API', message)
    this.status = status
    if (apiCode != null) this.apiCode = apiCode
  }
}

export class ApiTimeoutError extends PinboxError {
  constructor (message = 'the request timed out') {
    super('ERR_TIMEOUT', message)
  }
}

/** A flag or argument that parses but makes no sense (bad duration, bad chunker, …). */
export class InvalidArgumentError extends PinboxError {
  constructor (message = 'invalid argument') {
    super('ERR_INVALID_ARGUMENT', message)
  }
}

/** A tar entry from `get` would be written outside the output folder. */
export class UnsafePathError extends PinboxError {
  constructor (message = 'refusing to write outside the output folder') {
    super('ERR_UNSAFE_PATH', message)
  }
}

/** The daemon sent something that does not parse as the documented reply. */
export class BadResponseError extends PinboxError {
  constructor (message = 'unexpected response from the daemon') {
    super('ERR_BAD_RESPONSE', message)
  }
}
