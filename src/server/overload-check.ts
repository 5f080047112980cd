import type { Config } from '../config/schema.js';
import { EventLoopLoad } from './event-loop-load.js';

export interface OverloadCheck {
  /** The event loop's measured load; absent when load shedding is off. */
  load: EventLoopLoad | undefined;
  /** Why new WebRTC legs are refused now, or undefined when they are not. */
  overloaded: () => string | undefined;
}

/**
 * One answer for the SFU's admission and for /readyz, so that they never disagree:
 * the event loop busier than WEBRTC_OVERLOAD_BUSY_PERCENT (0: never overloaded).
 */
export function overloadCheck(config: Config['webrtc']): OverloadCheck {
  const busyLimit = config.overloadBusyPercent / 100;
  const load = busyLimit > 0 ? new EventLoopLoad() : undefined;
  const overloaded = (): string | undefined => {
    const busy = load?.utilization ?? 0;
    return busy > busyLimit
      ? `server overloaded: its event loop is ${Math.round(busy * 100)} % busy (limit ${config.overloadBusyPercent} %)`
      : undefined;
  };
  return { load, overloaded };
}
