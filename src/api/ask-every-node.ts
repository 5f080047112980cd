import type { z } from 'zod';
import { subjectToken, type Bus } from '../ports/bus/bus.js';
import { isPortUnavailable } from '../ports/port-errors.js';
import type { ThrottledLog } from '../lib/throttled-log.js';
import { busJson, readBusJson } from './bus-json.js';

export interface EveryNodeAnswers<T> {
  /** One valid answer per node that gave one, by node id. */
  answers: Map<string, T>;
  /** Nodes that did not answer in time, had gone, or answered nonsense. */
  missing: string[];
}

/**
 * Asks each of `nodes` the same question on its own subject (`chorus.node.<id>.<what>`),
 * all at once, and waits for every answer or its timeout. Answers are untrusted: one that
 * does not parse counts as missing. For views that add up what each node holds (a
 * channel's receivers, a conversation's members), where a node that left simply adds
 * nothing. The bus itself out of reach is no view at all: that rejects (503 at the edge).
 */
export async function askEveryNode<T>(
  bus: Bus,
  nodes: readonly string[],
  what: string,
  question: unknown,
  schema: z.ZodType<T>,
  opts: { timeoutMs: number; surface: string; log: ThrottledLog },
): Promise<EveryNodeAnswers<T>> {
  const data = busJson(question);
  const answers = new Map<string, T>();
  const missing: string[] = [];
  await Promise.all(
    nodes.map(async (node) => {
      const subject = nodeSubject(node, what);
      try {
        const reply = await bus.request(subject, data, { timeoutMs: opts.timeoutMs });
        const value = readBusJson(schema, reply, { surface: opts.surface, subject }, opts.log);
        if (value === undefined) missing.push(node);
        else answers.set(node, value);
      } catch (err) {
        if (isPortUnavailable(err)) throw err;
        // No responders (it left) or no answer in time: it adds nothing to the view.
        missing.push(node);
      }
    }),
  );
  return { answers, missing };
}

/** A node's own subject for one operation: `chorus.node.<node id token>.<what>`. */
export function nodeSubject(node: string, what: string): string {
  return `chorus.node.${subjectToken(node)}.${what}`;
}
