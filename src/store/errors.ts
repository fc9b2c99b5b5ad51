import { PinboxError } from '../errors.ts'

export class ConfigInvalidError extends PinboxError {
  static readonly code = 'ERR_CONFIG_INVALID'
  readonly key: string

  constructor (key: string, message = `invalid config value for "${key}"`) {
    super(ConfigInvalidError.code, message)
    this.key = key
  }
}

export class RepoNotFoundError extends PinboxError {
  static readonly code = 'ERR_REPO_NOT_FOUND'
  constructor (path: string, message = `no pinbox repo at ${path}: run \`pinbox init\`, or check that the disk holding it is mounted`) {
    super(RepoNotFoundError.code, message)
  }
}

export class RepoExistsError extends PinboxError {
  static readonly code = 'ERR_REPO_EXISTS'
  constructor (path: string, message = `a pinbox repo already exists at ${path}`) {
    super(RepoExistsError.code, message)
  }
}

export class RepoVersionError extends PinboxError {
  static readonly code = 'ERR_REPO_VERSION'
  constructor (message = 'unsupported repo version') {
    super(RepoVersionError.code, message)
  }
}

export class RepoLockedError extends PinboxError {
  static readonly code = 'ERR_REPO_LOCKED'
  constructor (path: string, lockFile: string, options?: ErrorOptions) {
    super(RepoLockedError.code, `repo ${path} is in use by another pinbox process (lock held on ${lockFile})`, options)
  }
}

export class RepoCorruptError extends PinboxError {
  static readonly code = 'ERR_REPO_CORRUPT'
  constructor (message = 'repo is corrupt', options?: ErrorOptions) {
    super(RepoCorruptError.code, message, options)
  }
}

export class DiskFullError extends PinboxError {
  static readonly code = 'ERR_DISK_FULL'
  readonly path: string

  constructor (path: string, options?: ErrorOptions) {
    super(DiskFullError.code, `no space left on the disk while writing ${path}`, options)
    this.path = path
  }
}

export class QuotaExceededError extends PinboxError {
  static readonly code = 'ERR_QUOTA_EXCEEDED'
  constructor (message = 'storage quota exceeded') {
    super(QuotaExceededError.code, message)
  }
}

export class StoreClosedError extends PinboxError {
  static readonly code = 'ERR_STORE_CLOSED'
  constructor (message = 'the blockstore is not open') {
    super(StoreClosedError.code, message)
  }
}

export class LeaseClosedError extends PinboxError {
  static readonly code = 'ERR_LEASE_CLOSED'
  constructor (message = 'the lease is closed: open a new one') {
    super(LeaseClosedError.code, message)
  }
}
