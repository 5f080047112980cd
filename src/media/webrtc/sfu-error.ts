/** Why the SFU refused an offer; surfaces map the code to their wire format. */
export type SfuErrorCode =
  | 'bad_sdp'
  | 'no_usable_codec'
  | 'nothing_to_subscribe'
  | 'negotiation_failed'
  /** No new peer now: the peer limit is reached or the process is overloaded (try later). */
  | 'overloaded';

/** Seconds a client refused as `overloaded` is told to wait (`Retry-After`). */
export const OVERLOADED_RETRY_AFTER_SECONDS = 5;

export class SfuError extends Error {
  constructor(
    readonly code: SfuErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SfuError';
  }
}
