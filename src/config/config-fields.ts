import type { z } from 'zod';
import type { FieldMeta } from './fields.js';
import { configSchema } from './schema.js';

/** One leaf of the config schema, flattened: where it lives and how it is documented. */
export interface ConfigField {
  path: readonly string[];
  meta: FieldMeta;
  defaultValue: unknown;
  schema: z.ZodType;
}

function isObject(s: z.ZodType): s is z.ZodObject {
  return s.def.type === 'object';
}

function walk(schema: z.ZodObject, prefix: string[], out: ConfigField[]): void {
  const shape: Record<string, z.ZodType> = schema.shape;
  for (const [key, child] of Object.entries(shape)) {
    const path = [...prefix, key];
    if (isObject(child)) {
      walk(child, path, out);
      continue;
    }
    const meta = child.meta() as FieldMeta | undefined;
    if (!meta?.env) throw new Error(`config field ${path.join('.')} has no env metadata`);
    const def = child.def as { type: string; defaultValue?: unknown };
    out.push({
      path,
      meta,
      defaultValue: def.type === 'default' ? def.defaultValue : undefined,
      schema: child,
    });
  }
}

/** Every leaf of the schema, in declaration order. */
export function configFields(): ConfigField[] {
  const out: ConfigField[] = [];
  walk(configSchema, [], out);
  return out;
}
