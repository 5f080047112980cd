/** How a receiver asked to read a channel. */
export type ReceiveMode = 'receive' | 'receive-clear-cache' | 'probe';

/** Why the engine ends a receiver; the surface turns it into its wire form. */
export type SinkEnd = 'publisher-ended' | 'probe-done' | 'too-slow' | 'invalid-key';

/**
 * A receiver's connection as the fan-out engine sees it. The engine never learns which
 * protocol carries the bytes.
 */
export interface StreamSink {
  /** Bytes handed to `send` and not yet written out. */
  readonly bufferedAmount: number;
  /** Must not copy `chunk`: the same buffer goes to every receiver. */
  send(chunk: Buffer): void;
  end(reason: SinkEnd): void;
}

/** What the engine needs from a publisher's connection. */
export interface PublisherControl {
  /** The coordinator (or an operator) stops this stream. */
  kill(reason: string): void;
  /** Stop reading the publisher for now: the fan-out backlog is full (TCP pushes back). */
  pause?(): void;
  resume?(): void;
  /**
   * The chunks come from another node's publisher (the cluster relay): this node's
   * coordinator link does not own it, so kills are not for it and it does not count as
   * a publisher of this node.
   */
  readonly relayed?: boolean;
}

export interface FanOutPolicy {
  /** Bytes that may wait for one receiver before it counts as too slow. */
  receiverQueueBytes: number;
  /** skip: drop chunks for it until its queue halves; close: end it. */
  slowReceiver: 'skip' | 'close';
}
