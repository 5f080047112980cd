/** Where the pages send a person whose browser hides the camera, microphone or WebCrypto. */
export const SECURE_CONTEXT_DOCS = '/docs/secure-context.md';

/**
 * Browsers give camera, microphone and WebCrypto (`crypto.subtle`) only to secure
 * contexts: HTTPS, or http://localhost. Opened over plain HTTP from another machine (the
 * LAN address the log prints) those are `undefined` and the page would fail with a
 * TypeError; instead it says so at the top, with what to do. Returns true when insecure.
 */
export function warnIfInsecure(needs: string): boolean {
  if (window.isSecureContext) return false;
  const box = document.createElement('section');
  box.id = 'insecure-context';
  box.className = 'card insecure';
  box.setAttribute('role', 'alert');
  const title = document.createElement('h2');
  title.textContent = 'This page needs HTTPS (or localhost)';
  const why = document.createElement('p');
  why.textContent =
    `It was opened over plain HTTP from ${location.host}, which the browser does not treat as ` +
    `a secure context, so it hides ${needs}. Open it over HTTPS (Chorus's TLS listener: set ` +
    'SSL_CERT and SSL_KEY) or as http://localhost on the machine running Chorus.';
  const how = document.createElement('p');
  const link = document.createElement('a');
  link.href = SECURE_CONTEXT_DOCS;
  link.textContent = 'How to serve the pages over HTTPS';
  how.append(link);
  box.append(title, why, how);
  const main = document.querySelector('main');
  if (main) main.prepend(box);
  else document.body.prepend(box);
  return true;
}
