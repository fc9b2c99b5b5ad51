/**
 * Base of every typed error in pinbox. Each layer has its own `errors.ts` with one class per
 * condition; callers and tests match on the stable `code`, never on the message text.
 */
export class PinboxError extends Error {
  readonly code: string

  constructor (code: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    this.name = code
  }
}
