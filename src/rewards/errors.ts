import { PinboxError } from '../errors.ts'

/** A segment index at or past the commitment's segment count (or not a whole number). */
export class SegmentOutOfRangeError extends PinboxError {
  static readonly code = 'ERR_SEGMENT_OUT_OF_RANGE'

  constructor (message = 'Segment index is out of range', options?: ErrorOptions) {
    super(SegmentOutOfRangeError.code, message, options)
  }
}

/**
 * The committed bytes S are empty (a DAG of identity blocks only): there is no segment to
 * challenge, so no commitment exists rather than a made-up root.
 */
export class EmptyCommitmentError extends PinboxError {
  static readonly code = 'ERR_EMPTY_COMMITMENT'

  constructor (message = 'Content has no bytes to commit to', options?: ErrorOptions) {
    super(EmptyCommitmentError.code, message, options)
  }
}

/** Content whose recomputed commitment differs from the one a deal names: refuse the deal. */
export class CommitmentMismatchError extends PinboxError {
  static readonly code = 'ERR_COMMITMENT_MISMATCH'

  constructor (message = 'Content does not match the deal commitment', options?: ErrorOptions) {
    super(CommitmentMismatchError.code, message, options)
  }
}
