/** What the server is told about one received video (the protocol's `trackSettings`). */
export interface VideoSettings {
  /** The rendered size in device pixels; 0: no limit. */
  width: number;
  height: number;
  /** False: shown nowhere (hidden, off screen, page in the background, turned off). */
  active: boolean;
}

/** One element the video is attached to, as last observed. */
export interface ElementView {
  /** Its size on screen in device pixels. */
  width: number;
  height: number;
  /** In the document, in (or near) the viewport and not zero-sized. */
  visible: boolean;
}

/** What the application said explicitly (`setVideoSize`, `setEnabled`). */
export interface ExplicitVideoSettings {
  size?: { width: number; height: number } | undefined;
  enabled: boolean;
}

/** Element changes are sent once they have settled this long (a resize drag, a layout change). */
export const SETTLE_MS = 300;

/**
 * The settings for a video from where it is shown: the largest visible element's size
 * (an explicit size wins), inactive when turned off or when it has elements and none is
 * visible or the page is hidden. A video with no element (the application renders it its
 * own way) stays active at no limit unless told otherwise.
 */
export function videoSettings(
  views: Iterable<ElementView>,
  explicit: ExplicitVideoSettings,
  pageHidden: boolean,
): VideoSettings {
  let width = 0;
  let height = 0;
  let elements = 0;
  let visible = 0;
  for (const v of views) {
    elements++;
    if (!v.visible) continue;
    visible++;
    width = Math.max(width, Math.ceil(v.width));
    height = Math.max(height, Math.ceil(v.height));
  }
  const shown = elements === 0 || (visible > 0 && !pageHidden);
  if (explicit.size) ({ width, height } = explicit.size);
  return { width, height, active: explicit.enabled && shown };
}

const same = (a: VideoSettings, b: VideoSettings): boolean =>
  a.width === b.width && a.height === b.height && a.active === b.active;

/** The settings a new subscription starts with on the server. */
const SERVER_DEFAULT: VideoSettings = { width: 0, height: 0, active: true };

/**
 * Adaptive stream for one received video: observes the elements it is attached to (size
 * with ResizeObserver, on-screen with IntersectionObserver, the page's visibility) and,
 * once a change has settled, tells the server the size it is shown at and whether it is
 * shown at all, so it gets the smallest simulcast layer that fills its largest element
 * and nothing while nobody sees it. Explicit settings go out at once.
 */
export class AdaptiveVideo {
  readonly #views = new Map<HTMLElement, ElementView>();
  readonly #onScreen = new Map<HTMLElement, boolean>();
  #explicit: ExplicitVideoSettings = { enabled: true };
  /** What the server has now (the current leg's). */
  #sent: VideoSettings = SERVER_DEFAULT;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #resize: ResizeObserver | undefined;
  #intersection: IntersectionObserver | undefined;
  readonly #onVisibility = (): void => this.#schedule();

  constructor(
    /** Sends the settings; false when they could not go out (not subscribed): sent again on the next leg. */
    private readonly send: (s: VideoSettings) => boolean,
    private readonly settleMs = SETTLE_MS,
  ) {}

  /** The settings as they stand now. */
  get settings(): VideoSettings {
    return videoSettings(this.#views.values(), this.#explicit, pageHidden());
  }

  /** Follows `el` (a video element the track is shown in). */
  observe(el: HTMLElement): void {
    if (this.#views.has(el)) return;
    this.#views.set(el, measure(el, true));
    if (this.#views.size === 1 && typeof document !== 'undefined')
      document.addEventListener('visibilitychange', this.#onVisibility);
    if (typeof ResizeObserver !== 'undefined') {
      this.#resize ??= new ResizeObserver((entries) => {
        for (const e of entries) this.#update(e.target as HTMLElement);
      });
      this.#resize.observe(el);
    }
    if (typeof IntersectionObserver !== 'undefined') {
      // A margin: a tile scrolled just out of view keeps its layer for a quick scroll back.
      this.#intersection ??= new IntersectionObserver(
        (entries) => {
          for (const e of entries) {
            this.#onScreen.set(e.target as HTMLElement, e.isIntersecting);
            this.#update(e.target as HTMLElement);
          }
        },
        { rootMargin: '100px' },
      );
      this.#intersection.observe(el);
    }
    this.#schedule();
  }

  /** Stops following `el`. */
  unobserve(el: HTMLElement): void {
    if (!this.#views.delete(el)) return;
    this.#onScreen.delete(el);
    this.#resize?.unobserve(el);
    this.#intersection?.unobserve(el);
    if (this.#views.size === 0 && typeof document !== 'undefined')
      document.removeEventListener('visibilitychange', this.#onVisibility);
    this.#schedule();
  }

  /** The size the application shows the video at (device pixels); undefined: from the elements again. */
  setVideoSize(size: { width: number; height: number } | undefined): void {
    this.#explicit = {
      ...this.#explicit,
      size: size && { width: whole(size.width), height: whole(size.height) },
    };
    this.flush();
  }

  /** Whether the application wants the video at all (false: the server stops sending it). */
  setEnabled(enabled: boolean): void {
    this.#explicit = { ...this.#explicit, enabled };
    this.flush();
  }

  /** @internal An element's view changed (the observers call this; so may tests). */
  noteView(el: HTMLElement, view: ElementView): void {
    if (!this.#views.has(el)) return;
    this.#views.set(el, view);
    this.#schedule();
  }

  /** A new leg (it starts with the server's defaults): what differs from them goes out again. */
  newLeg(): void {
    this.#sent = SERVER_DEFAULT;
    this.flush();
  }

  /** Sends the settings now if they differ from what the server has. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const next = this.settings;
    if (same(next, this.#sent)) return;
    if (this.send(next)) this.#sent = next;
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#resize?.disconnect();
    this.#intersection?.disconnect();
    this.#views.clear();
    this.#onScreen.clear();
    if (typeof document !== 'undefined') document.removeEventListener('visibilitychange', this.#onVisibility);
  }

  #update(el: HTMLElement): void {
    this.noteView(el, measure(el, this.#onScreen.get(el) ?? true));
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.flush(), this.settleMs);
  }
}

/** An element's size in device pixels and whether it can be seen. */
function measure(el: HTMLElement, onScreen: boolean): ElementView {
  const ratio = typeof devicePixelRatio === 'number' && devicePixelRatio > 0 ? devicePixelRatio : 1;
  const width = (el.clientWidth || 0) * ratio;
  const height = (el.clientHeight || 0) * ratio;
  return { width, height, visible: el.isConnected && onScreen && width > 0 && height > 0 };
}

function pageHidden(): boolean {
  return typeof document !== 'undefined' && document.visibilityState === 'hidden';
}

function whole(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.min(16_384, Math.ceil(n)) : 0;
}
