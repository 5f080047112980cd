/** Why the SFU refused an offer; surfaces map the code to their wire format. */
export type SfuErrorCode = 'bad_sdp' | 'no_usable_codec' | 'nothing_to_subscribe' | 'negotiation_failed';

export class SfuError extends Error {
  constructor(
    readonly code: SfuErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SfuError';
  }
}
