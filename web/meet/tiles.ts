/** The meeting's grid of tiles, the same in both modes (Blue Sky REST and the native SDK). */

const byId = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

export function setStatus(text: string): void {
  byId('status').textContent = text;
}

/** A tile: video, name, a state overlay while connecting, badges for muted media. */
export function tile(id: string, name: string, mine = false): HTMLElement {
  let el = document.getElementById(`tile-${id}`);
  if (el) return el;
  el = document.createElement('div');
  el.id = `tile-${id}`;
  el.className = `tile${mine ? ' me' : ''}`;
  el.innerHTML =
    '<video autoplay playsinline></video><span class="name"></span><div class="state">connecting…</div><div class="badges"></div>';
  el.querySelector('.name')!.textContent = mine ? `${name} (you)` : name;
  if (mine) (el.querySelector('video') as HTMLVideoElement).muted = true;
  byId('grid').append(el);
  return el;
}

export function setTileState(id: string, text: string | undefined): void {
  const state = document.querySelector<HTMLElement>(`#tile-${CSS.escape(id)} .state`);
  if (!state) return;
  state.textContent = text ?? '';
  state.classList.toggle('hidden', text === undefined);
}

export function removeTile(id: string): void {
  document.getElementById(`tile-${id}`)?.remove();
}

/** Shows `labels` (say 'mic off') as the tile's badges. */
export function setBadges(id: string, labels: readonly string[]): void {
  const badges = document.querySelector(`#tile-${CSS.escape(id)} .badges`);
  if (!badges || badges.textContent === labels.join('')) return;
  badges.replaceChildren(
    ...labels.map((text) => {
      const b = document.createElement('span');
      b.className = 'badge';
      b.textContent = text;
      return b;
    }),
  );
}
