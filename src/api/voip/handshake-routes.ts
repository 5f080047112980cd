import type { FastifyPluginAsync } from 'fastify';
import { ChorusError } from '../../core/errors.js';
import { form } from './form.js';
import { seedRoute } from './seed-route.js';
import type { Decision, Relay } from './voip-auth.js';
import type { VoipServices } from './voip-services.js';

/**
 * The call handshake: `/newCall` rings the callee, `/answer` and `/answer2` relay the
 * standalone mode's signed challenges, `/acceptCall` or `/rejectCall` settle it, and
 * `/endCall` (Chorus) hangs up. Each step tells the other party by an event.
 */
export const handshakeRoutes: FastifyPluginAsync<VoipServices> = async (app, voip) => {
  const { auth, calls, notify } = voip;

  seedRoute(app, '/newCall', ['POST'], async (request, reply) => {
    const f = form(request);
    const me = await auth.caller(request, f, 'newCall');
    const dest = auth.party(f.Destination, auth.labels.destination);
    if (dest === me.id) throw new ChorusError('invalid_argument', 'bad Destination');
    const offer = await auth.offerCall(me, dest, f);
    await calls.ring(me.id, dest);
    notify(dest, 'newCall', { ...offer, from: me.id });
    return reply.type('text/plain').send(await auth.callPlaced(me));
  });

  /** answer and answer2: relay a signature over the peer's challenge and a new one. */
  const relay = (name: Relay) =>
    seedRoute(app, `/${name}`, ['POST'], async (request, reply) => {
      auth.requireKeys(name);
      const f = form(request);
      const me = await auth.caller(request, f);
      const peer = auth.party(f.Destination, 'Destination');
      const call = await calls.find(me.id, peer);
      if (call?.state !== 'ringing') throw new ChorusError('not_found', 'call not found');
      const { answer, challenge } = await auth.relay(name, me, peer, f);
      notify(peer, name, { answer, challenge, from: me.id });
      return reply.type('text/plain').send('');
    });
  relay('answer');
  relay('answer2');

  const decide = (name: Decision) =>
    seedRoute(app, `/${name}`, ['POST'], async (request, reply) => {
      const f = form(request);
      const me = await auth.caller(request, f);
      const caller = auth.party(f.From, auth.labels.from);
      const ringing = await calls.find(me.id, caller);
      if (ringing?.state !== 'ringing' || ringing.callee !== me.id)
        throw new ChorusError('not_found', 'call not found');
      const answer = await auth.decide(name, me, caller, f);
      // On the call's owner, wherever it is; it may have ended meanwhile.
      if (name === 'acceptCall') {
        if (!(await calls.accept(me.id, caller))) throw new ChorusError('not_found', 'call not found');
        notify(caller, 'acceptedCall', { answer, challenge: '', from: me.id });
      } else {
        if (!(await calls.reject(me.id, caller))) throw new ChorusError('not_found', 'call not found');
        notify(caller, 'declineCall', { answer, from: me.id });
      }
      return reply.type('text/plain').send('');
    });
  decide('acceptCall');
  decide('rejectCall');

  // Chorus: hang up. The other party gets `endCall`.
  seedRoute(app, '/endCall', ['POST'], async (request, reply) => {
    const f = form(request);
    const me = await auth.caller(request, f);
    const other = auth.party(f.Destination ?? f.From, 'Destination');
    if (!(await calls.hangUp(me.id, other))) throw new ChorusError('not_found', 'call not found');
    return reply.type('text/plain').send('');
  });
};
