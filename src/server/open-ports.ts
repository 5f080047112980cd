import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { assertUdpPortFree } from '../media/webrtc/udp-port-check.js';
import { createPorts } from '../ports/create-ports.js';
import { PortStartError } from '../ports/port-errors.js';
import type { Ports } from '../ports/ports.js';
import { reasonOf, StartupError } from './startup-error.js';

/**
 * The ports (bus, store, sinks), after checking what start-up needs of the machine; in
 * cluster mode this waits (bounded) for the first NATS connection.
 * What fails here is the operator's to fix, so it is a StartupError: one line, exit 2.
 */
export async function openPorts(config: Config, given: Ports | undefined, log: Logger): Promise<Ports> {
  // The WebRTC mux port, taken now rather than found taken by the first peer.
  if ((config.bluesky.enabled || config.beep.enabled) && !config.webrtc.portRange) {
    try {
      await assertUdpPortFree(config.webrtc.udpPort, config.webrtc.bindAddress);
    } catch (err) {
      throw new StartupError(reasonOf(err), { cause: err });
    }
  }
  try {
    return given ?? (await createPorts(config, log));
  } catch (err) {
    // The cluster's NATS out of reach or without JetStream: the message says what to do.
    if (err instanceof PortStartError) throw new StartupError(err.message, { cause: err });
    // Otherwise opening the data directory is what fails here (DATA_DIR unusable).
    throw new StartupError(`${reasonOf(err)}; set DATA_DIR`, { cause: err });
  }
}
