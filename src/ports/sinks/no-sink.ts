import type { MessageSink } from './message-sink.js';

/** The sink when none is configured: everything is dropped, nothing is counted as lost. */
export class NoSink implements MessageSink {
  readonly connected = false;
  readonly published = 0;
  readonly dropped = 0;
  publish(): boolean {
    return false;
  }
  async close(): Promise<void> {}
}
