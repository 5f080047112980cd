/**
 * `/readyz` is true only when every registered component has said it is up and the
 * server is not draining.
 */
export class Readiness {
  private readonly components = new Map<string, boolean>();
  private drainingFlag = false;

  expect(name: string): void {
    if (!this.components.has(name)) this.components.set(name, false);
  }

  set(name: string, up: boolean): void {
    this.components.set(name, up);
  }

  drain(): void {
    this.drainingFlag = true;
  }

  get draining(): boolean {
    return this.drainingFlag;
  }

  get ready(): boolean {
    if (this.drainingFlag) return false;
    for (const up of this.components.values()) if (!up) return false;
    return true;
  }

  snapshot(): { ready: boolean; draining: boolean; components: Record<string, boolean> } {
    return {
      ready: this.ready,
      draining: this.drainingFlag,
      components: Object.fromEntries(this.components),
    };
  }
}
