import { fileURLToPath } from 'node:url';
import { ESLint, Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';

// The layering rule as the project's own eslint.config.js gives it to a file of src/
// (docs/architecture.md#layers), run on a probe import written as it would be there.
const root = fileURLToPath(new URL('../..', import.meta.url));
const eslint = new ESLint({ cwd: root });
const linter = new Linter({ configType: 'flat' });

async function problems(file: string, code: string): Promise<string[]> {
  const config = (await eslint.calculateConfigForFile(file)) as Linter.Config;
  const rule = config.rules?.['no-restricted-imports'];
  expect(rule, `no layer rule for ${file}`).toBeDefined();
  const messages = linter.verify(
    code,
    [
      {
        files: ['**/*.ts'],
        languageOptions: { parser: tseslint.parser },
        rules: { 'no-restricted-imports': rule! },
      },
    ],
    file,
  );
  // Anything but this rule's verdict (a parse error, no config matched) fails the test.
  for (const m of messages) expect(m.ruleId, m.message).toBe('no-restricted-imports');
  return messages.map((m) => m.message);
}

const wrong = async (file: string, code: string) => expect(await problems(file, code)).toHaveLength(1);
const right = async (file: string, code: string) => expect(await problems(file, code)).toEqual([]);

describe('layer rule', () => {
  it('refuses an import of a layer above, value or type-only, at any depth', async () => {
    await wrong('src/lib/probe.ts', "import { RoomId } from '../core/ids.js';");
    await wrong('src/config/probe.ts', "import type { Ports } from '../ports/ports.js';");
    await wrong('src/core/probe.ts', "import type { ServerMetrics } from '../server/metrics.js';");
    await wrong('src/core/probe.ts', "import { Sfu } from '../media/webrtc/sfu.js';");
    await wrong('src/media/webrtc/probe.ts', "import { Engine } from '../../engine/engine.js';");
    await wrong('src/ports/store/probe.ts', "export { Room } from '../../core/room.js';");
    await wrong(
      'src/api/voip/probe.ts',
      "import { WebSocketTracker } from '../../server/websocket-tracker.js';",
    );
    await wrong('src/server/probe.ts', "import { main } from '../main.js';");
    const [message] = await problems('src/core/probe.ts', "import { x } from '../api/surfaces.js';");
    expect(message).toMatch(/core\/ may not import a layer above it; the order is lib <- config/);
  });

  it('refuses one surface importing another', async () => {
    await wrong('src/api/voip/probe.ts', "import { BeepError } from '../beep/beep-errors.js';");
    await wrong('src/api/signal/probe.ts', "export * from '../stream/stream-wire.js';");
  });

  it('lets a file import its own layer and the layers below', async () => {
    await right('src/lib/probe.ts', "import { TokenBucket } from './token-bucket.js';");
    await right('src/core/probe.ts', "import { TokenBucket } from '../lib/token-bucket.js';");
    await right('src/media/webrtc/probe.ts', "import { GopCache } from '../stream/gop-cache.js';");
    await right('src/media/webrtc/probe.ts', "import { Room } from '../../core/room.js';");
    await right('src/api/voip/probe.ts', "import { Engine } from '../../engine/engine.js';");
    await right('src/api/voip/probe.ts', "import { errorBody } from '../error-table.js';");
    await right('src/api/voip/probe.ts', "import { VoipWire } from './voip-wire.js';");
    await right('src/server/probe.ts', "import { surfaces } from '../api/surfaces.js';");
  });
});
