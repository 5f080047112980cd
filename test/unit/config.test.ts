import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load-config.js';
import { configFields } from '../../src/config/config-fields.js';
import { selfSignedCert } from '../fixtures/self-signed.js';

const dir = mkdtempSync(join(tmpdir(), 'chorus-config-'));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

function errorsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.lines;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('has working defaults with nothing set', () => {
    const c = loadConfig();
    expect(c.http.port).toBe(8000);
    expect(c.store.dataDir).toBe('./data');
    expect(c.signal.enabled).toBe(true);
    expect(c.signal.prefixes).toEqual(['', '/api']);
    expect(c.signal.maxFrameBytes).toBe(65536);
    expect(c.shutdown.graceSeconds).toBe(10);
    expect(c.tls.cert).toBeUndefined();
    expect(Object.isFrozen(c.http)).toBe(true);
  });

  it("accepts the seeds' variable names and their YES/NO booleans", () => {
    // The files are read and checked when loading, so they must be real.
    const { cert, key } = selfSignedCert(mkdtempSync(join(dir, 'seed-tls-')));
    const c = loadConfig({
      env: {
        HTTP_PORT: '9000',
        BIND_ADDRESS: '127.0.0.1',
        SSL_PORT: '9443',
        SSL_CERT: cert,
        SSL_KEY: key,
        LOG_REQUESTS: 'NO',
        LOG_DEBUG: 'YES',
      },
    });
    expect(c.http.port).toBe(9000);
    expect(c.http.bindAddress).toBe('127.0.0.1');
    expect(c.tls).toMatchObject({ port: 9443, cert, key });
    expect(c.log.requests).toBe(false);
    expect(c.log.level).toBe('debug');
  });

  it('applies precedence: defaults < overrides < --config file < .env < environment', () => {
    const yaml = file(
      'p.yaml',
      'http:\n  port: 1111\n  bindAddress: 10.0.0.1\nsignal:\n  rateLimitPerSecond: 7\n',
    );
    const dotenv = file('p.env', 'HTTP_PORT=2222\nSIGNAL_RATE_BURST=9\n');
    const c = loadConfig({
      overrides: { http: { port: 5555 }, shutdown: { graceSeconds: 3 }, signal: { rateLimitPerSecond: 1 } },
      configFile: yaml,
      dotenvPath: dotenv,
      env: { HTTP_PORT: '3333' },
    });
    expect(c.http.port).toBe(3333); // env beats .env beats file beats override
    expect(c.http.bindAddress).toBe('10.0.0.1'); // file
    expect(c.signal.rateLimitPerSecond).toBe(7); // file beats override
    expect(c.signal.rateLimitBurst).toBe(9); // .env
    expect(c.shutdown.graceSeconds).toBe(3); // override
  });

  it('reads JSON files and env-style keys in files', () => {
    const json = file('c.json', JSON.stringify({ HTTP_PORT: 4444, signal: { prefixes: ['/sig'] } }));
    const c = loadConfig({ configFile: json });
    expect(c.http.port).toBe(4444);
    expect(c.signal.prefixes).toEqual(['/sig']);
  });

  it('parses lists with empty items where they mean something', () => {
    expect(loadConfig({ env: { SIGNAL_PREFIXES: ',/api/' } }).signal.prefixes).toEqual(['', '/api']);
    expect(loadConfig({ env: { TRUST_PROXY: ' 10.0.0.0/8 , ,127.0.0.1' } }).http.trustProxy).toEqual([
      '10.0.0.0/8',
      '127.0.0.1',
    ]);
  });

  it('stops with one line per bad key, naming the variable and what was expected', () => {
    const lines = errorsOf(() =>
      loadConfig({
        env: { HTTP_PORT: 'eighty', LOG_REQUESTS: 'maybe', SIGNAL_MAX_FRAME_BYTES: '-5', LOG_LEVEL: 'loud' },
      }),
    );
    expect(lines).toHaveLength(4);
    expect(lines).toContainEqual(
      expect.stringMatching(/^HTTP_PORT \(http\.port\) = "eighty": expected an integer from 0 to 65535$/),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(/^LOG_REQUESTS \(log\.requests\) = "maybe": expected YES\/NO/),
    );
    expect(lines).toContainEqual(expect.stringMatching(/^SIGNAL_MAX_FRAME_BYTES .*expected an integer/));
    expect(lines).toContainEqual(expect.stringMatching(/^LOG_LEVEL .*"loud"/));
  });

  it('reports unknown keys and bad values in a config file, and an unreadable file', () => {
    const bad = file('bad.yaml', 'http:\n  prot: 80\nsignal:\n  maxFrameBytes: huge\nnonsense: 1\n');
    const lines = errorsOf(() => loadConfig({ configFile: bad }));
    expect(lines).toContainEqual(expect.stringMatching(/http\.prot: unknown setting/));
    expect(lines).toContainEqual(expect.stringMatching(/nonsense: unknown setting/));
    expect(lines).toContainEqual(expect.stringMatching(/signal\.maxFrameBytes.*"huge".*expected an integer/));
    expect(errorsOf(() => loadConfig({ configFile: join(dir, 'missing.yaml') }))[0]).toMatch(/cannot read/);
    const broken = file('broken.json', '{"http":');
    expect(errorsOf(() => loadConfig({ configFile: broken }))[0]).toMatch(/not valid \.json/);
  });

  it('checks IP allow lists when loading', () => {
    expect(loadConfig({ env: { PLAY_WHITELIST: '127.0.0.1, 10.0.0.0/8,::1' } }).stream.playWhitelist).toEqual(
      ['127.0.0.1', '10.0.0.0/8', '::1'],
    );
    const lines = errorsOf(() => loadConfig({ env: { CONCURRENT_LIMIT_WHITELIST: '10.0.0.0/8,localhost' } }));
    expect(lines).toEqual([
      expect.stringMatching(/^CONCURRENT_LIMIT_WHITELIST .*not an IP address or CIDR: "localhost"/),
    ]);
  });

  it('treats an empty variable as unset for optional settings', () => {
    expect(loadConfig({ env: { CONTROL_BASE_URL: '' } }).stream.controlBaseUrl).toBeUndefined();
  });

  it('refuses short secrets', () => {
    const lines = errorsOf(() => loadConfig({ env: { ADMIN_TOKEN: 'short', COOKIE_SECRET: 'tiny' } }));
    expect(lines).toHaveLength(2);
    expect(lines.join('\n')).toMatch(/ADMIN_TOKEN .*at least 16/);
  });
});

describe('LISTEN (the Beep seed)', () => {
  it('sets the HTTP port, and the address when it has a host', () => {
    expect(loadConfig({ env: { LISTEN: ':8080' } }).http.port).toBe(8080);
    const c = loadConfig({ env: { LISTEN: '127.0.0.2:9090' } });
    expect([c.http.bindAddress, c.http.port]).toEqual(['127.0.0.2', 9090]);
    expect(() => loadConfig({ env: { LISTEN: 'nonsense' } })).toThrow(/LISTEN/);
  });
});

describe('the cluster section and where bites go (#12.4)', () => {
  it('leaves cluster mode and the bite sink off by default', () => {
    const c = loadConfig();
    expect(c.cluster).toEqual({ connectTimeoutSeconds: 10, kvReplicas: 1, processes: 1, localNatsPort: 0 });
    expect(c.sinks.natsUrl).toBeUndefined();
  });

  it("reads CLUSTER_NATS_URL and CLUSTER_NODE_ID; NATS (the Beep seed's) is where bites go", () => {
    const c = loadConfig({
      env: {
        CLUSTER_NATS_URL: 'nats://10.0.0.1:4222, nats://10.0.0.2:4222',
        CLUSTER_NODE_ID: 'node-a_1',
        NATS: 'nats://bites:4222',
      },
    });
    expect(c.cluster.natsUrl).toEqual(['nats://10.0.0.1:4222', 'nats://10.0.0.2:4222']);
    expect(c.cluster.nodeId).toBe('node-a_1');
    expect(c.sinks.natsUrl).toEqual(['nats://bites:4222']);
    expect(loadConfig({ env: { NATS: 'a:4222,b:4222' } }).sinks.natsUrl).toEqual(['a:4222', 'b:4222']);
  });

  it('sends bites to the cluster NATS when NATS is unset (or empty)', () => {
    for (const env of [
      { CLUSTER_NATS_URL: 'nats://10.0.0.1:4222' },
      { CLUSTER_NATS_URL: 'nats://10.0.0.1:4222', NATS: '' },
    ]) {
      const c = loadConfig({ env });
      expect(c.sinks.natsUrl).toEqual(['nats://10.0.0.1:4222']);
      expect(c.cluster.natsUrl).toEqual(['nats://10.0.0.1:4222']);
    }
    const fromFile = loadConfig({
      configFile: file('cluster.yaml', 'cluster:\n  natsUrl: [nats://k:4222]\n'),
    });
    expect(fromFile.sinks.natsUrl).toEqual(['nats://k:4222']);
  });

  it('still accepts the earlier key beep.nats, in overrides and files', () => {
    expect(loadConfig({ overrides: { beep: { nats: 'nats://old:4222' } } }).sinks.natsUrl).toEqual([
      'nats://old:4222',
    ]);
    const yaml = file('old.yaml', 'beep:\n  nats: nats://old:4222,nats://old2:4222\n');
    expect(loadConfig({ configFile: yaml }).sinks.natsUrl).toEqual(['nats://old:4222', 'nats://old2:4222']);
    const both = loadConfig({
      overrides: { beep: { nats: 'nats://old:4222' }, sinks: { natsUrl: 'nats://new:4222' } },
    });
    expect(both.sinks.natsUrl).toEqual(['nats://new:4222']);
  });

  it('refuses an empty server list, a URL with spaces and a bad node id, naming the variable', () => {
    const lines = errorsOf(() =>
      loadConfig({ env: { NATS: ' , ', CLUSTER_NATS_URL: 'nats://a b', CLUSTER_NODE_ID: 'node.1' } }),
    );
    expect(lines).toHaveLength(3);
    expect(lines).toContainEqual(
      expect.stringMatching(/^NATS \(sinks\.natsUrl\) .*at least one NATS server/),
    );
    expect(lines).toContainEqual(expect.stringMatching(/^CLUSTER_NATS_URL \(cluster\.natsUrl\) .*no spaces/));
    expect(lines).toContainEqual(
      expect.stringMatching(/^CLUSTER_NODE_ID \(cluster\.nodeId\) .*letters, digits/),
    );
  });
});

describe('start-up checks (#11.12)', () => {
  const TRUE_FORMS = ['YES', 'yes', 'Yes', 'true', 'TRUE', '1', 'on', 'y'];
  const FALSE_FORMS = ['NO', 'no', 'No', 'false', 'FALSE', '0', 'off', 'n'];

  it('every boolean setting takes every documented form, LOG_PRETTY included', () => {
    const booleans = configFields().filter((f) => typeof f.defaultValue === 'boolean');
    expect(booleans.length).toBeGreaterThan(10);
    for (const f of booleans) {
      const name = f.meta.env[0]!;
      const read = (v: string): unknown => getPath(loadConfig({ env: { [name]: v } }), f.path);
      for (const v of TRUE_FORMS) expect(read(v), `${name}=${v}`).toBe(true);
      for (const v of FALSE_FORMS) expect(read(v), `${name}=${v}`).toBe(false);
    }
    const pretty = (v: string): string => loadConfig({ env: { LOG_PRETTY: v } }).log.pretty;
    for (const v of TRUE_FORMS) expect(pretty(v), `LOG_PRETTY=${v}`).toBe('yes');
    for (const v of FALSE_FORMS) expect(pretty(v), `LOG_PRETTY=${v}`).toBe('no');
    expect(pretty('auto')).toBe('auto');
    expect(pretty('AUTO')).toBe('auto');
    expect(loadConfig({ configFile: file('pretty.yaml', 'log:\n  pretty: true\n') }).log.pretty).toBe('yes');
    expect(errorsOf(() => loadConfig({ env: { LOG_PRETTY: 'sometimes' } }))).toEqual([
      expect.stringMatching(/^LOG_PRETTY \(log\.pretty\) = "sometimes": expected auto, YES\/NO/),
    ]);
  });

  it('bind addresses must be IP addresses (or localhost)', () => {
    for (const ok of ['0.0.0.0', '::', '127.0.0.1', '::1', 'localhost', ' 10.1.2.3 ']) {
      expect(loadConfig({ env: { BIND_ADDRESS: ok } }).http.bindAddress).toBe(ok.trim());
    }
    for (const bad of ['not-an-address', '999.1.1.1', '127.0.0.1:8000', 'example.com']) {
      expect(errorsOf(() => loadConfig({ env: { BIND_ADDRESS: bad } }))).toEqual([
        expect.stringMatching(/^BIND_ADDRESS \(http\.bindAddress\) = .*expected an IP address to bind to/),
      ]);
    }
    expect(errorsOf(() => loadConfig({ env: { LISTEN: 'nowhere:8080' } }))[0]).toMatch(
      /^LISTEN .*host must be an IP address/,
    );
    expect(errorsOf(() => loadConfig({ env: { WEBRTC_BIND_ADDRESS: 'eth0' } }))[0]).toMatch(
      /^WEBRTC_BIND_ADDRESS .*expected an IP address/,
    );
    expect(errorsOf(() => loadConfig({ env: { METRICS_BIND_ADDRESS: 'lo' } }))[0]).toMatch(
      /^METRICS_BIND_ADDRESS .*expected an IP address/,
    );
  });

  it('EXTERNAL_IP must be a literal IP address', () => {
    expect(loadConfig({ env: { EXTERNAL_IP: '203.0.113.5' } }).network.externalIp).toBe('203.0.113.5');
    expect(loadConfig({ env: { EXTERNAL_IP: '2001:db8::5' } }).network.externalIp).toBe('2001:db8::5');
    for (const bad of ['garbage', 'media.example.com', '1.2.3', '203.0.113.5:443']) {
      expect(errorsOf(() => loadConfig({ env: { EXTERNAL_IP: bad } }))).toEqual([
        expect.stringMatching(/^EXTERNAL_IP \(network\.externalIp\) = .*expected an IP address/),
      ]);
    }
  });

  it('WEBRTC_PORT_RANGE must run from a lower to a higher port within 1-65535', () => {
    expect(loadConfig({ env: { WEBRTC_PORT_RANGE: '50000-50100' } }).webrtc.portRange).toBe('50000-50100');
    expect(loadConfig({ env: { WEBRTC_PORT_RANGE: '50000-50000' } }).webrtc.portRange).toBe('50000-50000');
    for (const bad of ['50100-50000', '0-100', '60000-70000', '50000']) {
      expect(errorsOf(() => loadConfig({ env: { WEBRTC_PORT_RANGE: bad } }))).toEqual([
        expect.stringMatching(/^WEBRTC_PORT_RANGE \(webrtc\.portRange\) = /),
      ]);
    }
    expect(errorsOf(() => loadConfig({ env: { WEBRTC_PORT_RANGE: '50100-50000' } }))[0]).toMatch(
      /first <= last/,
    );
  });

  it('TLS needs both files, readable, parseable and matching', () => {
    const a = selfSignedCert(mkdtempSync(join(dir, 'tls-a-')), 'a');
    const b = selfSignedCert(mkdtempSync(join(dir, 'tls-b-')), 'b');
    expect(loadConfig({ env: { SSL_CERT: a.cert, SSL_KEY: a.key } }).tls.cert).toBe(a.cert);

    expect(errorsOf(() => loadConfig({ env: { SSL_CERT: a.cert } }))).toEqual([
      `SSL_CERT (tls.cert) = ${JSON.stringify(a.cert)}: set without SSL_KEY: TLS needs both the certificate and the key`,
    ]);
    expect(errorsOf(() => loadConfig({ env: { SSL_KEY: a.key } }))).toEqual([
      expect.stringMatching(/^SSL_KEY \(tls\.key\) = .*set without SSL_CERT/),
    ]);
    expect(errorsOf(() => loadConfig({ env: { SSL_CERT: join(dir, 'none.pem'), SSL_KEY: a.key } }))).toEqual([
      expect.stringMatching(/^SSL_CERT \(tls\.cert\) = .*cannot read the file: ENOENT/),
    ]);
    const junk = file('junk.pem', 'not a certificate\n');
    expect(errorsOf(() => loadConfig({ env: { SSL_CERT: junk, SSL_KEY: junk } }))).toEqual([
      expect.stringMatching(/^SSL_CERT \(tls\.cert\) = .*not a PEM certificate/),
      expect.stringMatching(/^SSL_KEY \(tls\.key\) = .*not an unencrypted PEM private key/),
    ]);
    // The certificate where the key should be, and a key of another certificate.
    expect(errorsOf(() => loadConfig({ env: { SSL_CERT: a.cert, SSL_KEY: a.cert } }))[0]).toMatch(
      /^SSL_KEY .*not an unencrypted PEM private key/,
    );
    expect(errorsOf(() => loadConfig({ env: { SSL_CERT: a.cert, SSL_KEY: b.key } }))).toEqual([
      expect.stringMatching(/^SSL_KEY \(tls\.key\) = .*does not match the certificate/),
    ]);
  });

  it('METRICS_PORT cannot be the HTTP port', () => {
    expect(loadConfig({ env: { METRICS_PORT: '9100' } }).metrics.port).toBe(9100);
    expect(errorsOf(() => loadConfig({ env: { METRICS_PORT: '8000' } }))).toEqual([
      expect.stringMatching(/^METRICS_PORT \(metrics\.port\) = 8000: is the HTTP port/),
    ]);
  });
});

function getPath(obj: unknown, path: readonly string[]): unknown {
  let cur = obj;
  for (const k of path) cur = (cur as Record<string, unknown>)[k];
  return cur;
}
