/**
 * `load()`'s result, computed on the first call and kept: a module required on first
 * use (an idle server need not hold it, #17.2). The cache lives in the closure, so the
 * module that uses it keeps no mutable state of its own; what it caches never changes
 * once loaded.
 */
export function loadOnce<T>(load: () => T): () => T {
  let loaded: { value: T } | undefined;
  return () => (loaded ??= { value: load() }).value;
}
