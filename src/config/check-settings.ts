import { readFileSync } from 'node:fs';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import type { Config } from './schema.js';

/** A setting that is valid alone but not with the others, or names an unusable file. */
export interface SettingProblem {
  path: readonly string[];
  message: string;
}

/** The first line of an error: OpenSSL's and fs's messages are enough, stacks are not. */
const firstLine = (err: unknown): string =>
  (err instanceof Error ? err.message : String(err)).split('\n')[0]!;

function readable(path: readonly string[], file: string, out: SettingProblem[]): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch (err) {
    out.push({ path, message: `cannot read the file: ${firstLine(err)}` });
    return undefined;
  }
}

/**
 * TLS: both files or neither (one alone used to start without TLS and without a word),
 * and both must parse and belong together, so a bad file stops the start with the
 * variable's name instead of a stack from the HTTPS listener.
 */
function checkTls(tls: Config['tls'], out: SettingProblem[]): void {
  if (tls.cert === undefined && tls.key === undefined) return;
  if (tls.key === undefined) {
    out.push({
      path: ['tls', 'cert'],
      message: 'set without SSL_KEY: TLS needs both the certificate and the key',
    });
    return;
  }
  if (tls.cert === undefined) {
    out.push({
      path: ['tls', 'key'],
      message: 'set without SSL_CERT: TLS needs both the certificate and the key',
    });
    return;
  }
  const cert = readable(['tls', 'cert'], tls.cert, out);
  const key = readable(['tls', 'key'], tls.key, out);
  if (!cert || !key) return;
  let parsed = true;
  try {
    new X509Certificate(cert);
  } catch (err) {
    out.push({ path: ['tls', 'cert'], message: `not a PEM certificate: ${firstLine(err)}` });
    parsed = false;
  }
  try {
    createPrivateKey(key);
  } catch (err) {
    out.push({ path: ['tls', 'key'], message: `not an unencrypted PEM private key: ${firstLine(err)}` });
    parsed = false;
  }
  if (!parsed) return;
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    out.push({
      path: ['tls', 'key'],
      message: `does not match the certificate (SSL_CERT): ${firstLine(err)}`,
    });
  }
}

/** Checks across settings and of the files they name, after each value parsed alone. */
export function checkSettings(config: Config): SettingProblem[] {
  const out: SettingProblem[] = [];
  checkTls(config.tls, out);
  const metricsPort = config.metrics.port;
  if (metricsPort !== undefined && metricsPort !== 0 && metricsPort === config.http.port) {
    out.push({
      path: ['metrics', 'port'],
      message: 'is the HTTP port: leave METRICS_PORT unset to serve /metrics there, or choose another port',
    });
  }
  // Webhooks are signed with an API key: without one a receiver could verify nothing.
  if (config.chorus.webhookUrls.length > 0 && config.chorus.apiKeys.length === 0) {
    out.push({
      path: ['chorus', 'webhookUrls'],
      message: 'set without CHORUS_API_KEYS: webhooks are signed with an API key',
    });
  }
  return out;
}
