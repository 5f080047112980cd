import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type protobuf from 'protobufjs';
import type { Bite, BiteFormat } from '../../core/bite-publisher.js';

const requireHere = createRequire(import.meta.url);

/** The two messages a bite is written as. */
export interface BiteSchema {
  bite: protobuf.Type;
  store: protobuf.Type;
}

/**
 * The checked-in schema (beep.proto), parsed with protobufjs. Loaded with a format's first
 * bite, not with the surface: protobufjs and the parsed schema are 2.8 MiB of an idle
 * server that publishes no bites (bench/idle, BENCHMARKS.md); the first bite pays one
 * synchronous load (tens of ms), later ones nothing.
 */
function loadBiteSchema(): BiteSchema {
  const pb = requireHere('protobufjs') as typeof protobuf;
  const root = pb.parse(readFileSync(new URL('./beep.proto', import.meta.url), 'utf8')).root;
  return { bite: root.lookupType('protobuf.Bite'), store: root.lookupType('protobuf.Store') };
}

export const BITE_CODEC = 'opus/48000/1-framed';

/** Opus packets framed for `Bite.data`: each as a 16-bit big-endian length, then its bytes. */
export function framePackets(packets: readonly Uint8Array[]): Buffer {
  const out = Buffer.alloc(packets.reduce((n, p) => n + 2 + p.length, 0));
  let at = 0;
  for (const p of packets) {
    out.writeUInt16BE(p.length, at);
    out.set(p, at + 2);
    at += 2 + p.length;
  }
  return out;
}

export function unframePackets(data: Uint8Array): Uint8Array[] {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out: Uint8Array[] = [];
  for (let at = 0; at + 2 <= b.length;) {
    const n = b.readUInt16BE(at);
    out.push(b.subarray(at + 2, at + 2 + n));
    at += 2 + n;
  }
  return out;
}

/** `Bite` and `Store` for one bite of one speaker in one conversation. */
export function encodeBite(schema: BiteSchema, bite: Bite): { bite: Uint8Array; store: Uint8Array } {
  const fields = {
    key: bite.conversation,
    start: Math.floor(bite.startMs / 1000),
    data: framePackets(bite.packets),
    client: { key: bite.user, client: bite.client },
    startMs: bite.startMs,
    durationMs: Math.round(bite.durationMs),
    codec: BITE_CODEC,
  };
  const message = schema.bite.fromObject(fields);
  return {
    bite: schema.bite.encode(message).finish(),
    store: schema.store.encode(schema.store.fromObject({ type: 'bite', bite: fields })).finish(),
  };
}

/**
 * The original's wire format for the engine's bite publisher: a `Bite` on subject `bite`,
 * and a `Store` wrapping it on each of `storeSubjects` (the seed's consumers read both).
 */
export function beepBiteFormat(storeSubjects: readonly string[]): BiteFormat {
  let schema: BiteSchema | undefined;
  return {
    encode(bite) {
      schema ??= loadBiteSchema();
      const { bite: biteBytes, store } = encodeBite(schema, bite);
      return {
        bite: { subject: 'bite', data: biteBytes },
        also: storeSubjects.map((subject) => ({ subject, data: store })),
      };
    },
  };
}
