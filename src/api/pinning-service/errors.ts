import { PinboxError } from '../../errors.ts'

export class PinRequestNotFoundError extends PinboxError {
  static readonly code = 'ERR_PIN_REQUEST_NOT_FOUND'

  constructor (message = 'no pin request with this requestid', options?: ErrorOptions) {
    super(PinRequestNotFoundError.code, message, options)
  }
}

export class InvalidPinRequestError extends PinboxError {
  static readonly code = 'ERR_INVALID_PIN_REQUEST'

  constructor (message = 'invalid pin request', options?: ErrorOptions) {
    super(InvalidPinRequestError.code, message, options)
  }
}

export class PinningServiceStoppedError extends PinboxError {
  static readonly code = 'ERR_PINNING_SERVICE_STOPPED'

  constructor (message = 'the pinning service is not running', options?: ErrorOptions) {
    super(PinningServiceStoppedError.code, message, options)
  }
}

/** HTTP status of each code this service raises; other codes go through the API's table. */
export const PSA_STATUS_BY_CODE: Readonly<Record<string, number>> = {
  [PinRequestNotFoundError.code]: 404,
  [InvalidPinRequestError.code]: 400,
  [PinningServiceStoppedError.code]: 503
}
