/**
 * Where derived media goes (audio bites): fire-and-forget publishing that never blocks
 * the media path. A message that cannot be sent now is dropped and counted, not queued.
 */
export interface MessageSink {
  /** True when handed to the transport; false when dropped (not connected). */
  publish(subject: string, data: Uint8Array): boolean;
  readonly connected: boolean;
  readonly published: number;
  readonly dropped: number;
  close(): Promise<void>;
}
