import { setFlagsFromString } from 'node:v8';

/**
 * V8's optimizing compilers (Maglev, TurboFan) held off while the server is built.
 *
 * Start-up runs most of its code once, yet enough of it (module bodies, zod schemas, route
 * registration) gets hot for V8 to compile about 130 functions with Maglev and TurboFan on
 * its worker threads. Compiling even one function touches most of a compiler's machine code
 * in the node binary (about 6 MiB of file-backed pages for both on Node 24) and leaves the
 * compiler threads' malloc arenas holding about 3 MiB: an idle server kept about 9 MiB of
 * RSS for code that ran once (bench/idle, BENCHMARKS.md, #17.2). Imported at the top of main.ts
 * (and its own entry of the production build), this turns both compilers off for the start;
 * `releaseOptimizingCompilers()`, once the surfaces are mounted, turns them on again, so
 * whatever is hot from the first request on is optimized as before.
 *
 * Only compilers that are on by default are held (Maglev is off by default before V8 12, on
 * Node 20), and none when the operator set any compiler flag (`--jitless`, `--no-maglev`,
 * `--max-opt`, ...): those stay as given. While held, V8's flag hash differs from the one
 * Node's embedded code cache was made with, so Node modules loaded during the start compile
 * from source, as they already did with the young generation's flag (lib/young-generation.ts);
 * once both are released the hash is the default one again.
 */
const COMPILER_FLAG = /^--(no-)?(jitless|lite-mode|maglev|turbofan|opt|max-opt|sparkplug|always-[\w-]+)(=|$)/;

function operatorSetCompilerFlags(): boolean {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  return given.some((arg) => COMPILER_FLAG.test(arg.replaceAll('_', '-')));
}

function compilersOnByDefault(): string[] {
  const v8Major = Number(process.versions.v8.split('.')[0]);
  const maglev = v8Major >= 12 && (process.arch === 'x64' || process.arch === 'arm64');
  return maglev ? ['maglev', 'turbofan'] : ['turbofan'];
}

const held = operatorSetCompilerFlags() ? [] : compilersOnByDefault();
for (const compiler of held) setFlagsFromString(`--no-${compiler}`);

let released = false;

export function releaseOptimizingCompilers(): void {
  if (released) return;
  released = true;
  for (const compiler of held) setFlagsFromString(`--${compiler}`);
}
