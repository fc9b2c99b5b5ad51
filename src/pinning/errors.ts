import { PinboxError } from '../errors.ts'

export class NotPinnedError extends PinboxError {
  static readonly code = 'ERR_NOT_PINNED'

  constructor (message = 'not pinned or pinned indirectly', options?: ErrorOptions) {
    super(NotPinnedError.code, message, options)
  }
}

export class PinnedRecursivelyError extends PinboxError {
  static readonly code = 'ERR_PINNED_RECURSIVELY'

  constructor (message = 'pinned recursively', options?: ErrorOptions) {
    super(PinnedRecursivelyError.code, message, options)
  }
}


export class PinManagerStoppedError extends PinboxError {
  static readonly code = 'ERR_PIN_MANAGER_STOPPED'

  constructor (message = 'pin manager is stopped', options?: ErrorOptions) {
    super(PinManagerStoppedError.code, message, options)
  }
}
