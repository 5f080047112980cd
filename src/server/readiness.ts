/**
 * `/readyz` is true only when every registered component has said it is up, every
 * check passes, and the server is not draining.
 *
 * Components are set when something happens (a listener bound, a surface mounted).
 * Checks are asked at each snapshot, for conditions that come and go on their own, such
 * as the SFU's overload guard: readiness then says exactly what the guard would answer
 * at that moment, so a load balancer that waits for `/readyz` is not sent into a refusal.
 */
export class Readiness {
  private readonly components = new Map<string, boolean>();
  /** Each returns why the component is not ready, or undefined when it is. */
  private readonly checks = new Map<string, () => string | undefined>();
  /** Figures shown with the snapshot that do not decide readiness (the cluster's nodes). */
  private readonly details = new Map<string, () => unknown>();
  private drainingFlag = false;
  private stoppingFlag = false;

  expect(name: string): void {
    if (!this.components.has(name)) this.components.set(name, false);
  }

  set(name: string, up: boolean): void {
    this.components.set(name, up);
  }

  /** A component that is up while `notReadyBecause()` returns undefined. */
  check(name: string, notReadyBecause: () => string | undefined): void {
    this.checks.set(name, notReadyBecause);
  }

  /** Shows `read()` under `details.<name>` in each snapshot; it never makes the node unready. */
  detail(name: string, read: () => unknown): void {
    this.details.set(name, read);
  }

  drain(): void {
    this.drainingFlag = true;
  }

  get draining(): boolean {
    return this.drainingFlag;
  }

  /** The last step of a stop: the HTTP server is closing, no request starts anything now. */
  stop(): void {
    this.drainingFlag = true;
    this.stoppingFlag = true;
  }

  get stopping(): boolean {
    return this.stoppingFlag;
  }

  get ready(): boolean {
    return this.snapshot().ready;
  }

  snapshot(): {
    ready: boolean;
    draining: boolean;
    components: Record<string, boolean>;
    /** Why each failing check fails (absent when none does). */
    reasons?: Record<string, string>;
    details?: Record<string, unknown>;
  } {
    const components = Object.fromEntries(this.components);
    const reasons: Record<string, string> = {};
    for (const [name, notReadyBecause] of this.checks) {
      const why = notReadyBecause();
      components[name] = why === undefined;
      if (why !== undefined) reasons[name] = why;
    }
    const ready = !this.drainingFlag && Object.values(components).every(Boolean);
    return {
      ready,
      draining: this.drainingFlag,
      components,
      ...(Object.keys(reasons).length > 0 ? { reasons } : {}),
      ...(this.details.size > 0
        ? { details: Object.fromEntries([...this.details].map(([name, read]) => [name, read()])) }
        : {}),
    };
  }
}
