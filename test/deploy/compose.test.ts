import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/load-config.js';

/**
 * deploy/compose.yaml, the one-host cluster: a Compose tool accepts it where one is
 * installed, and its services agree with each other and with Chorus (NATS with JetStream
 * on a volume, three nodes with distinct ids and UDP ports published under their own
 * numbers, settings Chorus loads, Caddy's TLS in front of every node).
 */
const file = join(import.meta.dirname, '../../deploy/compose.yaml');
const deployDir = dirname(file);

interface Service {
  image?: string;
  build?: { context: string; dockerfile?: string };
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test: string[] };
  stop_grace_period?: string;
  depends_on?: Record<string, { condition: string }> | string[];
}

/**
 * Compose's `${VAR}`, `${VAR:-default}` and `${VAR-default}` with nothing set: the
 * defaults. Compose substitutes in the parsed strings (an empty default stays a string).
 */
function interpolate(value: unknown): unknown {
  if (typeof value === 'string') {
    return value.replace(
      /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g,
      (_m, _name, dflt?: string) => dflt ?? '',
    );
  }
  if (Array.isArray(value)) return value.map(interpolate);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v)]));
  }
  return value;
}

const compose = interpolate(parse(readFileSync(file, 'utf8'), { merge: true })) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const services = compose.services;
const chorusNodes = Object.entries(services).filter(([, s]) => s.environment?.CLUSTER_NATS_URL !== undefined);

function seconds(duration: string | undefined): number {
  const m = /^(\d+)s$/.exec(duration ?? '');
  if (!m) throw new Error(`not a duration in seconds: ${duration}`);
  return Number(m[1]);
}

/** `host:container/proto` -> its parts (the short syntax this file uses). */
function published(port: string): { host: number; container: number; proto: string } {
  const m = /^(\d+):(\d+)(?:\/(tcp|udp))?$/.exec(port);
  if (!m) throw new Error(`unexpected port syntax: ${port}`);
  return { host: Number(m[1]), container: Number(m[2]), proto: m[3] ?? 'tcp' };
}

/** `name:/path[:ro]` -> the named volume mounted at the path (undefined for bind mounts). */
function namedVolumeAt(s: Service, path: string): string | undefined {
  for (const v of s.volumes ?? []) {
    const [source, target] = v.split(':');
    if (target === path && source && !source.startsWith('.') && !source.startsWith('/')) return source;
  }
  return undefined;
}

function dockerfileEnv(name: string): string {
  const dockerfile = readFileSync(join(deployDir, '..', 'Dockerfile'), 'utf8');
  const m = new RegExp(`\\b${name}=(\\S+)`).exec(dockerfile);
  if (!m) throw new Error(`the Dockerfile sets no ${name}`);
  return m[1]!;
}

function composeTool(): string[] | undefined {
  for (const cmd of [['docker', 'compose'], ['podman', 'compose'], ['docker-compose']]) {
    const r = spawnSync(cmd[0]!, [...cmd.slice(1), 'version'], { stdio: 'ignore' });
    if (r.status === 0) return cmd;
  }
  process.stderr.write('skipping the Compose tool check: apt-get install -y docker-compose\n');
  return undefined;
}
const tool = composeTool();

function caddyInstalled(): boolean {
  if (spawnSync('caddy', ['version'], { stdio: 'ignore' }).status === 0) return true;
  process.stderr.write('skipping `caddy validate` of the Caddyfile: apt-get install -y caddy\n');
  return false;
}

describe('deploy/compose.yaml', () => {
  it.runIf(tool)(
    'a Compose tool reads it (`config`)',
    () => {
      const [cmd, ...pre] = tool!;
      let out: string;
      if (cmd === 'docker-compose') {
        // Debian's docker-compose 1.29 reads only the numbered formats, not the Compose
        // Specification: check it as format 2.4, which has every key used here but the
        // project `name`.
        const asV2 = readFileSync(file, 'utf8').replace(/^name: .*$/m, "version: '2.4'");
        out = execFileSync(cmd, ['-f', '-', '--project-directory', deployDir, 'config'], {
          input: asV2,
          encoding: 'utf8',
          cwd: deployDir,
        });
      } else {
        out = execFileSync(cmd!, [...pre, '-f', file, 'config'], { encoding: 'utf8' });
      }
      const resolved = parse(out) as { services: Record<string, Service> };
      expect(Object.keys(resolved.services).sort()).toEqual(Object.keys(services).sort());
    },
    60_000,
  );

  it('NATS runs JetStream with its store on a named volume, and is healthy before the nodes start', () => {
    const nats = services.nats!;
    expect(nats.command).toContain('-js');
    const storeDir = nats.command![nats.command!.indexOf('-sd') + 1]!;
    const volume = namedVolumeAt(nats, storeDir);
    expect(volume).toBeDefined();
    expect(compose.volumes).toHaveProperty(volume!);
    expect(nats.healthcheck?.test.join(' ')).toContain('/healthz');
    for (const [, s] of chorusNodes) {
      expect((s.depends_on as Record<string, { condition: string }>).nats?.condition).toBe('service_healthy');
    }
  });

  it('three Chorus nodes: distinct ids and UDP ports, each published under its own number, settings Chorus loads', () => {
    expect(chorusNodes).toHaveLength(3);
    const ids = new Set<string>();
    const udpPorts = new Set<number>();
    const dataDir = dockerfileEnv('DATA_DIR');
    for (const [name, s] of chorusNodes) {
      const env = s.environment!;
      const config = loadConfig({ env, dotenvPath: '/nonexistent/.env' });
      ids.add(config.cluster.nodeId!);
      udpPorts.add(config.webrtc.udpPort);
      // ICE announces EXTERNAL_IP and the port the node binds: the host must forward the same number.
      expect(config.network.externalIp, name).toBeDefined();
      expect(s.ports!.map(published)).toContainEqual({
        host: config.webrtc.udpPort,
        container: config.webrtc.udpPort,
        proto: 'udp',
      });
      expect(config.cluster.natsUrl, name).toHaveLength(1);
      const nats = new URL(config.cluster.natsUrl![0]!);
      expect(services[nats.hostname], name).toBeDefined();
      expect(nats.port).toBe('4222');
      // The node's data directory is its own named volume.
      const volume = namedVolumeAt(s, dataDir);
      expect(volume, name).toBeDefined();
      expect(compose.volumes).toHaveProperty(volume!);
      // Compose's stop waits longer than the drain and the close after it (5 s, src/main.ts) take.
      expect(seconds(s.stop_grace_period)).toBeGreaterThan(config.shutdown.graceSeconds + 5);
      // The HTTP port is the proxy's business, not the host's.
      expect(s.ports!.map(published).filter((p) => p.proto === 'tcp')).toEqual([]);
    }
    expect(ids.size).toBe(3);
    expect(udpPorts.size).toBe(3);
    expect(new Set(chorusNodes.map(([, s]) => s.image)).size).toBe(1);
    const built = chorusNodes.filter(([, s]) => s.build);
    expect(built).toHaveLength(1);
    expect(
      existsSync(
        join(resolve(deployDir, built[0]![1].build!.context), built[0]![1].build!.dockerfile ?? 'Dockerfile'),
      ),
    ).toBe(true);
  });

  it('Caddy terminates TLS with its internal CA and proxies to every node, routing by /readyz', () => {
    const proxy = services.proxy!;
    const mount = proxy.volumes!.find((v) => v.split(':')[1] === '/etc/caddy/Caddyfile');
    expect(mount).toBeDefined();
    const caddyfile = readFileSync(resolve(deployDir, mount!.split(':')[0]!), 'utf8');
    expect(caddyfile).toMatch(/^\s*tls internal\s*$/m);
    expect(proxy.ports!.map(published).map((p) => p.container)).toContain(443);
    const upstreams = /reverse_proxy ([^{\n]+)/.exec(caddyfile)![1]!.trim().split(/\s+/);
    const expected = chorusNodes.map(
      ([name, s]) =>
        `${name}:${loadConfig({ env: s.environment!, dotenvPath: '/nonexistent/.env' }).http.port}`,
    );
    expect(upstreams.sort()).toEqual(expected.sort());
    expect(caddyfile).toMatch(/health_uri \/readyz/);
    // Chorus believes the proxy's X-Forwarded-For (TRUST_PROXY covers the compose network).
    for (const [, s] of chorusNodes) expect(s.environment!.TRUST_PROXY).toBeTruthy();
  });

  it.runIf(caddyInstalled())(
    'Caddy accepts the Caddyfile (`caddy validate`), with and without EXTERNAL_IP',
    () => {
      const caddyfile = join(deployDir, 'compose', 'Caddyfile');
      // Caddy keeps its internal CA under XDG_DATA_HOME: a scratch one, not the user's.
      const scratch = mkdtempSync(join(tmpdir(), 'chorus-caddy-'));
      try {
        for (const extra of [{}, { EXTERNAL_IP: '192.0.2.10' }]) {
          const r = spawnSync('caddy', ['validate', '--config', caddyfile, '--adapter', 'caddyfile'], {
            env: {
              PATH: process.env.PATH ?? '',
              HOME: scratch,
              XDG_DATA_HOME: scratch,
              XDG_CONFIG_HOME: scratch,
              ...extra,
            },
            encoding: 'utf8',
          });
          expect(r.status, r.stderr).toBe(0);
          expect(r.stdout + r.stderr).toContain('Valid configuration');
        }
      } finally {
        rmSync(scratch, { recursive: true, force: true });
      }
    },
    30_000,
  );
});
