import { DeliverPolicy, type JetStreamClient } from '@nats-io/jetstream';

/** How often a listing with nothing new arriving asks its consumer whether it is done. */
const CHECK_EVERY_MS = 200;

/**
 * The keys of a KV bucket (JetStream stream `KV_<bucket>`, subjects `$KV.<bucket>.<key>`)
 * whose last operation is a put, as @nats-io/kv's `keys()` lists them (an ordered push
 * consumer delivering the last message of each subject, headers only) but with an end it
 * can always see. `keys()` ends on the message the server marks as the last pending one;
 * when a key is deleted while the listing starts, that mark never comes (the key's put is
 * removed after being counted) and it waits for the consumer's idle heartbeat, 30 s, far
 * past the store's bound: each republish of a relayed track lost 5 s to it on a loaded CI
 * box. Here, whenever nothing new arrived for CHECK_EVERY_MS, the consumer is asked: once
 * it has nothing pending and everything it delivered was received, the listing is done.
 */
export async function listKvKeys(js: JetStreamClient, bucket: string): Promise<string[]> {
  const prefix = `$KV.${bucket}.`;
  const consumer = await js.consumers.getPushConsumer(`KV_${bucket}`, {
    filter_subjects: `${prefix}>`,
    deliver_policy: DeliverPolicy.LastPerSubject,
    headers_only: true,
  });
  if ((await consumer.info(true)).num_pending === 0) return [];
  const messages = await consumer.consume();
  const keys: string[] = [];
  let received = 0;
  let lastReceived = -1;
  let asking = false;
  const check = setInterval(() => {
    if (asking || received !== lastReceived) {
      lastReceived = received;
      return;
    }
    asking = true;
    consumer.info().then(
      (info) => {
        asking = false;
        if (info.num_pending === 0 && received >= info.delivered.consumer_seq) messages.stop();
      },
      () => (asking = false), // asked again next time; the caller's bound ends a listing that never can
    );
  }, CHECK_EVERY_MS);
  try {
    for await (const m of messages) {
      received++;
      const op = m.headers?.get('KV-Operation');
      if (op !== 'DEL' && op !== 'PURGE') keys.push(m.subject.slice(prefix.length));
      if (m.info.pending === 0) break;
    }
  } finally {
    clearInterval(check);
    messages.stop();
  }
  return keys;
}
