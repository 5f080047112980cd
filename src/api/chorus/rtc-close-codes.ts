import type { ErrorCode } from '../../core/errors.js';

/** The native signalling's WebSocket close codes (sdk/src/protocol.ts `CloseCodes`). */
export const RTC_CLOSE = {
  normal: 1000,
  goingAway: 1001,
  messageTooLarge: 1009,
  invalidMessage: 4400,
  removed: 4403,
  duplicateIdentity: 4409,
  roomClosed: 4410,
  unavailable: 4503,
} as const;

/** Why a participant is made to leave, as said by the room service and the rooms. */
export const LEAVE_REASONS = {
  removed: 'removed by the room service',
  duplicateIdentity: 'duplicate identity',
  roomDeleted: 'room deleted',
  /** The session resumed on another node: not announced as leaving (rtc-handover.ts). */
  moved: 'resumed on another node',
} as const;

/** The close code for an engine error code or a leave reason. */
export function rtcCloseFor(codeOrReason: string): number {
  switch (codeOrReason) {
    case LEAVE_REASONS.removed:
      return RTC_CLOSE.removed;
    case LEAVE_REASONS.duplicateIdentity:
      return RTC_CLOSE.duplicateIdentity;
    case 'capacity':
    case 'overloaded':
    case 'unavailable':
    case 'internal':
      return RTC_CLOSE.unavailable;
    default:
      // The room deleted or closed (shutdown closes sockets itself, with 1001).
      return RTC_CLOSE.roomClosed;
  }
}

/** The protocol's error code (`ErrorResponse.code`) for an engine error code. */
export function rtcErrorCode(code: ErrorCode): string {
  switch (code) {
    case 'invalid_argument':
      return 'invalid_message';
    case 'too_large':
      return 'message_too_large';
    case 'unauthenticated':
    case 'forbidden':
    case 'not_found':
    case 'invalid_sdp':
    case 'capacity':
    case 'overloaded':
    case 'unavailable':
      return code;
    case 'rate_limited':
      return code;
    case 'conflict':
    case 'timeout':
    case 'upstream_failed':
    case 'internal':
      return 'internal';
  }
}
