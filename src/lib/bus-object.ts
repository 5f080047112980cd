const decoder = new TextDecoder();

/**
 * The JSON object a bus message carries, or undefined when it is larger than `maxBytes`,
 * not JSON, or not an object: what another node (or anyone with access to NATS) sent is
 * untrusted, so the caller checks each field it reads and drops what does not fit.
 */
export function busObject(data: Uint8Array, maxBytes: number): Record<string, unknown> | undefined {
  if (data.length > maxBytes) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(data));
  } catch {
    return undefined;
  }
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}
