// Failures seen by the soak's clients, counted by kind: a soak at scale fails the same
// way thousands of times, and one line per kind is what a reader can use.
export class Failures {
  private readonly kinds = new Map<string, number>();
  total = 0;

  add(err: unknown): void {
    this.total++;
    const text = kindOf(err);
    if (this.kinds.has(text) || this.kinds.size < 30) this.kinds.set(text, (this.kinds.get(text) ?? 0) + 1);
  }

  merge(kinds: Record<string, number>): void {
    for (const [k, n] of Object.entries(kinds)) {
      this.total += n;
      this.kinds.set(k, (this.kinds.get(k) ?? 0) + n);
    }
  }

  toJSON(): Record<string, number> {
    return Object.fromEntries(this.kinds);
  }
}

/** A short, stable description: the error's code or message, ids and numbers blanked. */
function kindOf(err: unknown): string {
  if (typeof err === 'string') return err.slice(0, 120);
  if (err instanceof Error) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const code = (err as { code?: string }).code ?? cause?.code;
    const text = code
      ? `${err.message} (${code})`
      : cause?.message
        ? `${err.message}: ${cause.message}`
        : err.message;
    return text.replace(/\d{3,}/g, 'N').slice(0, 120);
  }
  return String(err).slice(0, 120);
}
