import type { FastifyPluginAsync } from 'fastify';
import { ChorusError } from '../../core/errors.js';
import type { Store } from '../../ports/store/store.js';
import { form } from './form.js';
import { parsePublicKey } from './pkey.js';
import { seedRoute } from './seed-route.js';
import { storeKey } from './store-key.js';
import type { VoipAuth } from './voip-auth.js';

/** At most this many keys per `/displayNames` lookup (a room's member list). */
const MAX_LOOKUP = 64;
const NAME = /^[^\p{Cc}\p{Cf}]{1,40}$/u;

/**
 * Chorus's own addition for the /call/ page (standalone key mode only; the original has
 * none): a display name per key, so people see "Ada" rather than 66 hex digits.
 * `POST /setDisplayName` (`PKey`, `Signature` over the key's current ticket, `name`)
 * sets the caller's own name: only the key's holder can name it. `GET /displayNames?keys=a,b`
 * answers `{key: name}` for the keys that have one. Kept in the store, so every node
 * and a restart see them.
 */
export const displayNameRoutes: FastifyPluginAsync<{ auth: VoipAuth; store: Store }> = async (
  app,
  { auth, store },
) => {
  const names = store.bucket<{ name: string }>('voip-names');

  seedRoute(app, '/setDisplayName', ['POST'], async (request, reply) => {
    auth.requireKeys('display names');
    const f = form(request);
    const me = await auth.caller(request, f);
    if (!(await auth.ownsStream(me, f))) throw new ChorusError('unauthenticated', 'bad signature');
    const name = (f.name ?? '').trim();
    if (!NAME.test(name)) throw new ChorusError('invalid_argument', 'bad name (1 to 40 characters)');
    await names.put(storeKey(me.id), { name });
    return reply.type('text/plain').send('OK');
  });

  seedRoute(app, '/displayNames', ['GET'], async (request, reply) => {
    auth.requireKeys('display names');
    const keys = (form(request).keys ?? '')
      .split(',')
      .slice(0, MAX_LOOKUP)
      .flatMap((k) => parsePublicKey(k)?.id ?? []);
    const out: Record<string, string> = {};
    for (const key of keys) {
      const rec = await names.get(storeKey(key));
      if (rec && typeof rec.name === 'string') out[key] = rec.name;
    }
    return reply.type('application/json').send(JSON.stringify(out));
  });
};
