/**
 * The coordinator's text messages (the original's simple-rpc format): a method line in
 * upper case, `Name:Value` lines, a blank line, an optional body; serialised with a
 * trailing newline. Parameter names are matched case-insensitively.
 */
export interface ControlMessage {
  method: string;
  params: Map<string, string>;
  body: string;
}

export function controlMessage(
  method: string,
  params: Record<string, string> = {},
  body = '',
): ControlMessage {
  const map = new Map<string, string>();
  for (const [k, v] of Object.entries(params)) map.set(k.toLowerCase(), v);
  return { method: method.toUpperCase(), params: map, body };
}

/** Keeps the original's header spelling when writing. */
const SPELLING: Record<string, string> = {
  'request-id': 'Request-ID',
  'stream-channel': 'Stream-Channel',
  'stream-key': 'Stream-Key',
  'stream-id': 'Stream-ID',
  'user-ip': 'User-IP',
  'error-code': 'Error-Code',
  'error-message': 'Error-Message',
};

export function serializeControl(m: ControlMessage): string {
  let out = `${m.method}\n`;
  for (const [k, v] of m.params) out += `${SPELLING[k] ?? k}:${v}\n`;
  if (m.body) out += `\n${m.body}`;
  return out.endsWith('\n') ? out : out + '\n';
}

export function parseControl(text: string): ControlMessage | undefined {
  const lines = text.split('\n');
  const method = (lines[0] ?? '').trim().toUpperCase();
  if (!method) return undefined;
  const params = new Map<string, string>();
  let i = 1;
  for (; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line.trim() === '') {
      i++;
      break;
    }
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    params.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { method, params, body: lines.slice(i).join('\n') };
}
