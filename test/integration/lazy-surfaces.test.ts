import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freeUdpPort } from '../fixtures/free-udp-port.js';

const SURFACES = ['signal', 'bluesky', 'voip', 'beep', 'stream', 'chorus'] as const;
const ENV_FLAG = {
  signal: 'SIGNAL_ENABLED',
  bluesky: 'BLUESKY_ENABLED',
  voip: 'VOIP_ENABLED',
  beep: 'BEEP_ENABLED',
  stream: 'STREAM_ENABLED',
  chorus: 'CHORUS_API_ENABLED',
} as const;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * Starts `src/main.ts` (as `npm start` does) with only `on` enabled, waits for it to
 * listen, stops it by PID with SIGTERM and returns the modules it loaded.
 */
async function loadedModules(on: readonly (typeof SURFACES)[number][]): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-lazy-'));
  dirs.push(dir);
  const list = join(dir, 'modules.txt');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HTTP_PORT: '0',
    BIND_ADDRESS: '127.0.0.1',
    DATA_DIR: join(dir, 'data'),
    WEBRTC_UDP_PORT: String(await freeUdpPort()),
    LOG_PRETTY: 'no',
    MODULE_LIST_FILE: list,
  };
  for (const s of SURFACES) env[ENV_FLAG[s]] = on.includes(s) ? 'yes' : 'no';
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--import', './test/fixtures/module-list.mjs', 'src/main.ts', 'serve'],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not listening within 60 s:\n${out}`)), 60_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (out.includes('"msg":"chorus listening"')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}) before listening:\n${out}`));
    });
  });
  process.kill(child.pid!, 'SIGTERM');
  expect(await exited).toBe(0);
  return readFileSync(list, 'utf8').split('\n').filter(Boolean);
}

const surfaceModules = (modules: readonly string[], surface: string): string[] =>
  modules.filter((m) => m.includes(`/src/api/${surface}/`));
const packageLoaded = (modules: readonly string[], name: string): boolean =>
  modules.some((m) => m.includes(`/node_modules/${name}/`));

describe('disabled surfaces are not loaded', () => {
  it('with only Signal on, no module of the other surfaces (nor their libraries) is loaded', async () => {
    const modules = await loadedModules(['signal']);
    expect(surfaceModules(modules, 'signal').length).toBeGreaterThan(0);
    for (const off of ['bluesky', 'voip', 'beep', 'stream', 'chorus']) {
      expect(surfaceModules(modules, off), off).toEqual([]);
    }
    // Beep's bites (protobufjs), Beep's and Stream's tokens (jose), VOIP's resampler WASM.
    for (const lib of ['protobufjs', 'jose', '@echogarden/speex-resampler-wasm']) {
      expect(packageLoaded(modules, lib), lib).toBe(false);
    }
    // Loaded on first use only: NATS (a cluster or a sink), YAML (a YAML --config file),
    // Fastify's schema compilers (a route with a JSON schema; Signal's have none).
    for (const lib of ['@nats-io/nats-core', 'yaml', 'ajv', '@fastify/fast-json-stringify-compiler']) {
      expect(packageLoaded(modules, lib), lib).toBe(false);
    }
  }, 120_000);

  it('with every surface on, each one is loaded (the module list sees them)', async () => {
    const modules = await loadedModules(SURFACES);
    for (const s of SURFACES) expect(surfaceModules(modules, s).length, s).toBeGreaterThan(0);
    for (const lib of ['protobufjs', 'jose', '@echogarden/speex-resampler-wasm']) {
      expect(packageLoaded(modules, lib), lib).toBe(true);
    }
  }, 120_000);
});
