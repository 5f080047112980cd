import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load-config.js';

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
    const c = loadConfig({
      env: {
        HTTP_PORT: '9000',
        BIND_ADDRESS: '127.0.0.1',
        SSL_PORT: '9443',
        SSL_CERT: '/c.pem',
        SSL_KEY: '/k.pem',
        LOG_REQUESTS: 'NO',
        LOG_DEBUG: 'YES',
      },
    });
    expect(c.http.port).toBe(9000);
    expect(c.http.bindAddress).toBe('127.0.0.1');
    expect(c.tls).toMatchObject({ port: 9443, cert: '/c.pem', key: '/k.pem' });
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
