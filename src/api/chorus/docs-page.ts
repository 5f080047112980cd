/**
 * A readable page of the OpenAPI document, rendered in the browser from
 * `openapi.json` by a few lines of script (no CDN, nothing to install).
 */
export function docsPage(specUrl: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Chorus native API</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h2{margin-top:2rem;font-size:1.1rem}.m{display:inline-block;min-width:4.5rem;font-weight:700}
pre{background:#f5f5f5;padding:.5rem;overflow:auto;font-size:13px}details{margin:.25rem 0 .75rem 1rem}
</style></head><body><h1>Chorus native API</h1><p id="intro"></p><p>Machine-readable: <a href="${specUrl}">openapi.json</a></p><div id="routes"></div>
<script type="module">
const spec = await (await fetch(${JSON.stringify(specUrl)})).json();
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'})[c]);
document.getElementById('intro').textContent = spec.info.description;
let html = '';
for (const [path, ops] of Object.entries(spec.paths)) {
  for (const [method, op] of Object.entries(ops)) {
    html += '<h2><span class="m">' + method.toUpperCase() + '</span> <code>' + esc(path) + '</code></h2>';
    html += '<p>' + esc(op.summary) + '. ' + esc(op.description) + '</p>';
    if (op.requestBody) html += '<details><summary>Request body</summary><pre>' + esc(JSON.stringify(op.requestBody.content['application/json'].schema, null, 2)) + '</pre></details>';
    for (const [status, r] of Object.entries(op.responses)) {
      const schema = r.content?.['application/json']?.schema;
      html += '<details><summary>' + status + ' ' + esc(r.description) + '</summary>' + (schema ? '<pre>' + esc(JSON.stringify(schema, null, 2)) + '</pre>' : '') + '</details>';
    }
  }
}
document.getElementById('routes').innerHTML = html;
</script></body></html>
`;
}
