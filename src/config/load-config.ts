import { readFileSync, existsSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { createRequire } from 'node:module';
import { configSchema, type Config, type ConfigInput } from './schema.js';
import { configFields, type ConfigField } from './config-fields.js';
import { checkSettings } from './check-settings.js';

// YAML is read only with a `--config` YAML file: the parser is loaded then, not at every start.
const load = createRequire(import.meta.url);
const parseYaml = (text: string): unknown => (load('yaml') as typeof import('yaml')).parse(text);

/** Raised when configuration is invalid; `lines` has one entry per bad key. */
export class ConfigError extends Error {
  constructor(readonly lines: string[]) {
    super(`invalid configuration:\n${lines.join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface ConfigSources {
  /** The process environment (highest precedence). */
  env?: Record<string, string | undefined>;
  /** Path of a `.env` file; read when it exists. */
  dotenvPath?: string;
  /** Path of a JSON or YAML config file (`--config FILE`); must exist. */
  configFile?: string;
  /** Values given in code, e.g. by tests (lowest precedence after defaults). */
  overrides?: ConfigInput;
}

type Raw = Record<string, unknown>;

function getPath(obj: unknown, path: readonly string[]): unknown {
  let cur: unknown = obj;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Raw)[k];
  }
  return cur;
}

function setPath(obj: Raw, path: readonly string[], value: unknown): void {
  let cur = obj;
  for (const k of path.slice(0, -1)) {
    const next = cur[k];
    if (next === null || typeof next !== 'object') cur[k] = {};
    cur = cur[k] as Raw;
  }
  cur[path[path.length - 1]!] = value;
}

function readConfigFile(file: string): Raw {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`--config ${file}: cannot read: ${(err as Error).message}`]);
  }
  try {
    const ext = extname(file).toLowerCase();
    const parsed: unknown = ext === '.json' ? JSON.parse(text) : parseYaml(text);
    if (parsed === null || parsed === undefined) return {};
    if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('expected a mapping at the top');
    return parsed as Raw;
  } catch (err) {
    throw new ConfigError([
      `--config ${file}: not valid ${extname(file) || 'YAML'}: ${(err as Error).message}`,
    ]);
  }
}

/**
 * A config file may use nested keys (`http: {port: 8000}`) or the environment names
 * (`HTTP_PORT: 8000`). Unknown keys are errors: a typo should not silently do nothing.
 */
function fileValues(
  file: Raw,
  fields: ConfigField[],
  origin: string,
  errors: string[],
): Map<ConfigField, unknown> {
  const out = new Map<ConfigField, unknown>();
  const byEnv = new Map<string, ConfigField>();
  for (const f of fields) for (const e of f.meta.env) byEnv.set(e, f);
  const byKey = new Map<string, ConfigField>();
  for (const f of fields) for (const k of [f.path.join('.'), ...(f.meta.formerKeys ?? [])]) byKey.set(k, f);
  const sections = new Set(fields.map((f) => f.path[0]));

  const visit = (obj: Raw, prefix: string[]): void => {
    for (const [k, v] of Object.entries(obj)) {
      const path = [...prefix, k];
      const dotted = path.join('.');
      if (prefix.length === 0 && byEnv.has(k)) {
        out.set(byEnv.get(k)!, v);
      } else if (byKey.has(dotted)) {
        out.set(byKey.get(dotted)!, v);
      } else if (
        v !== null &&
        typeof v === 'object' &&
        !Array.isArray(v) &&
        (prefix.length > 0 || sections.has(k))
      ) {
        visit(v as Raw, path);
      } else {
        errors.push(`${origin}: ${dotted}: unknown setting`);
      }
    }
  };
  visit(file, []);
  return out;
}

function describe(field: ConfigField, origin: string): string {
  return origin === 'default' ? field.path.join('.') : `${origin} (${field.path.join('.')})`;
}

/**
 * Loads the config. Precedence, lowest to highest: built-in defaults, code overrides,
 * the `--config` file, the `.env` file, the process environment. An invalid value
 * throws a ConfigError with one line per bad key.
 */
export function loadConfig(sources: ConfigSources = {}): Config {
  const fields = configFields();
  const errors: string[] = [];
  const raw: Raw = {};
  // Every section exists, so each leaf's default applies when nothing sets it.
  for (const f of fields) {
    let cur = raw;
    for (const k of f.path.slice(0, -1)) cur = (cur[k] ??= {}) as Raw;
  }
  const originOf = new Map<string, string>();

  const put = (f: ConfigField, value: unknown, origin: string): void => {
    setPath(raw, f.path, value);
    originOf.set(f.path.join('.'), origin);
  };

  if (sources.overrides) {
    for (const f of fields) {
      // A key of an earlier version counts only when the current one is not given.
      const v = [f.path, ...(f.meta.formerKeys ?? []).map((k) => k.split('.'))]
        .map((path) => getPath(sources.overrides, path))
        .find((value) => value !== undefined);
      if (v !== undefined) put(f, v, 'override');
    }
  }
  if (sources.configFile) {
    const file = readConfigFile(sources.configFile);
    for (const [f, v] of fileValues(file, fields, sources.configFile, errors))
      put(f, v, `${sources.configFile}`);
  }
  const layers: Array<[string, Record<string, string | undefined>]> = [];
  if (sources.dotenvPath && existsSync(sources.dotenvPath)) {
    layers.push([sources.dotenvPath, parseDotenv(readFileSync(sources.dotenvPath))]);
  }
  if (sources.env) layers.push(['env', sources.env]);
  for (const [origin, vars] of layers) {
    for (const f of fields) {
      // The first name listed wins when several are set in one layer: seeds' names first.
      // An empty variable leaves an optional setting unset (CONTROL_BASE_URL= means standalone).
      const optional = f.defaultValue === undefined;
      const name = f.meta.env.find((e) => vars[e] !== undefined && !(optional && vars[e] === ''));
      if (name !== undefined) put(f, vars[name], origin === 'env' ? name : `${origin}:${name}`);
    }
  }

  const result = configSchema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const dotted = issue.path.join('.');
      const field = fields.find((f) => f.path.join('.') === dotted);
      const origin = originOf.get(dotted) ?? 'default';
      const shown = field ? describe(field, origin) : dotted;
      const value = getPath(raw, issue.path as string[]);
      errors.push(`${shown} = ${JSON.stringify(value)}: ${issue.message}`);
    }
  }
  if (errors.length > 0) throw new ConfigError(errors);
  const config = result.data!;
  if (config.log.debug && config.log.level === 'info') config.log.level = 'debug';
  // LISTEN (the Beep seed's `[host]:port`) sets both halves of the HTTP address.
  if (config.http.listen) {
    const { host, port } = config.http.listen;
    config.http.port = port;
    if (host) config.http.bindAddress = host;
  }
  // Beep's NATS means "where bites go"; in a cluster they go to the cluster's NATS unless
  // told otherwise. Resolved here so createPorts reads one top-level setting.
  if (!config.sinks.natsUrl && config.cluster.natsUrl) config.sinks.natsUrl = config.cluster.natsUrl;
  for (const problem of checkSettings(config)) {
    const dotted = problem.path.join('.');
    const field = fields.find((f) => f.path.join('.') === dotted);
    const shown = field ? describe(field, originOf.get(dotted) ?? 'default') : dotted;
    errors.push(`${shown} = ${JSON.stringify(getPath(config, problem.path))}: ${problem.message}`);
  }
  if (errors.length > 0) throw new ConfigError(errors);
  return deepFreeze(config);
}

function deepFreeze<T>(obj: T): T {
  if (obj && typeof obj === 'object') {
    for (const v of Object.values(obj)) deepFreeze(v);
    Object.freeze(obj);
  }
  return obj;
}
