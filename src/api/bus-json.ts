import type { z } from 'zod';
import type { ThrottledLog } from '../lib/throttled-log.js';
import { clipClientText } from '../lib/throttled-log.js';

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** A message for the bus: JSON bytes. */
export function busJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/**
 * A bus message (or answer) read as `schema`, or undefined: whatever another node (or
 * anyone with access to NATS) sent is untrusted, so a message that is not JSON or not of
 * the shape is logged (throttled) and dropped, never thrown.
 */
export function readBusJson<T>(
  schema: z.ZodType<T>,
  data: Uint8Array,
  where: { surface: string; subject: string },
  log: ThrottledLog,
): T | undefined {
  const text = decoder.decode(data);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    log.warn(
      { subject: where.subject, text: clipClientText(text) },
      `${where.surface}: bus message is not JSON, dropped`,
    );
    return undefined;
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    log.warn(
      { subject: where.subject, text: clipClientText(text) },
      `${where.surface}: bus message of the wrong shape, dropped`,
    );
    return undefined;
  }
  return parsed.data;
}
