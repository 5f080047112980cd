/**
 * The protocol carries data as text. Bytes travel base64-encoded, marked by a topic
 * that starts with BYTES_TOPIC (the application's topic follows it), so the receiving
 * SDK hands back a Uint8Array; strings travel as they are. Pure, for unit tests.
 */
export const BYTES_TOPIC = '~b64/';

export interface EncodedData {
  payload: string;
  topic?: string;
}

export function encodeData(data: string | Uint8Array, topic?: string): EncodedData {
  if (typeof data === 'string') return topic === undefined ? { payload: data } : { payload: data, topic };
  let binary = '';
  for (let i = 0; i < data.length; i += 0x8000)
    binary += String.fromCharCode(...data.subarray(i, i + 0x8000));
  return { payload: btoa(binary), topic: BYTES_TOPIC + (topic ?? '') };
}

export function decodeData(
  payload: string,
  topic: string | undefined,
): { data: string | Uint8Array; topic: string | undefined } {
  if (topic === undefined || !topic.startsWith(BYTES_TOPIC)) return { data: payload, topic };
  const rest = topic.slice(BYTES_TOPIC.length);
  try {
    const binary = atob(payload);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return { data: bytes, topic: rest === '' ? undefined : rest };
  } catch {
    // Not base64 after all (another client's label): hand it over as text, untouched.
    return { data: payload, topic };
  }
}
