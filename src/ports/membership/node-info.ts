import { z } from 'zod';
import type { NodeInfo } from './membership.js';

/** A node's announcement as read from the bucket: untrusted until it parses. */
const nodeInfoSchema = z.object({
  id: z.string().min(1).max(64),
  instance: z.string().min(1).max(64),
  httpUrl: z.string().max(2048).optional(),
  webrtc: z.object({ address: z.string().max(256), udpPort: z.number().int().min(0).max(65535) }).optional(),
  load: z.object({
    connections: z.number().int().min(0),
    eventLoopUtilization: z.number().min(0).max(1),
  }),
  version: z.string().max(64),
  protocol: z.number().int(),
  startedAt: z.string().max(64),
});

const decoder = new TextDecoder();

/** The announcement in `data`, or undefined when it is not one (logged by the caller). */
export function parseNodeInfo(data: Uint8Array): NodeInfo | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(decoder.decode(data));
  } catch {
    return undefined;
  }
  const parsed = nodeInfoSchema.safeParse(raw);
  if (!parsed.success) return undefined;
  // exactOptionalPropertyTypes: copy the optional fields only when present.
  const { httpUrl, webrtc, ...rest } = parsed.data;
  return {
    ...rest,
    ...(httpUrl === undefined ? {} : { httpUrl }),
    ...(webrtc === undefined ? {} : { webrtc }),
  };
}
