import type { Config } from '../config/schema.js';

/** A browser page bundled under web/, served at `/<name>/` when its surface is on. */
export interface WebPage {
  name: 'signal' | 'stream' | 'meet' | 'call';
  title: string;
  /** One line on what a person does there. */
  what: string;
}

const PAGES: readonly (WebPage & { on(config: Config): boolean })[] = [
  {
    name: 'meet',
    title: 'Video conference',
    what: 'A room for several people with camera and microphone, through the SFU (Blue Sky surface).',
    on: (c) => c.bluesky.enabled,
  },
  {
    name: 'signal',
    title: 'Peer-to-peer video call',
    what: 'Pick a name and call someone by theirs; the media goes browser to browser (Signal surface).',
    on: (c) => c.signal.enabled,
  },
  {
    name: 'call',
    title: 'Audio calls and rooms',
    what: 'One-to-one audio calls and mixed group rooms, no account: a key made in the browser (VOIP surface).',
    on: (c) => c.voip.enabled,
  },
  {
    name: 'stream',
    title: 'Live stream',
    what: 'Publish a camera or a file to a channel and watch it, late joiners included (Stream surface).',
    on: (c) => c.stream.enabled && !c.stream.disableTestClient,
  },
];

/** The pages this config serves, in the order the front door lists them. */
export function webPages(config: Config): WebPage[] {
  if (!config.web.enabled) return [];
  return PAGES.filter((p) => p.on(config)).map(({ name, title, what }) => ({ name, title, what }));
}

/** The pages this config does not serve (their surface is off). */
export function disabledWebPages(config: Config): string[] {
  return PAGES.filter((p) => !p.on(config)).map((p) => p.name);
}
