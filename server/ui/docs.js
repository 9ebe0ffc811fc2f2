// The API reference page (docs.html): renders /openapi.json, the single source, as a list of routes.
'use strict';

const escape = (s) => String(s ?? '').replace(/[&<>"]/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]));
fetch('/openapi.json').then((r) => r.json()).then((spec) => {
  let html = `<p>${escape(spec.info.description)}</p>`;
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const params = (op.parameters || []).map((p) => `<code>${escape(p.name)}</code> (${p.in})`).join(', ');
      const statuses = Object.entries(op.responses).map(([code, r]) => `<code>${code}</code> ${escape(r.description)}`).join('<br>');
      html += `<section class="route"><h3><span class="method ${method}">${method.toUpperCase()}</span> <code>${escape(path)}</code>
        ${op.security ? '<span class="pill warn">admin token</span>' : ''}</h3>
        <p>${escape(op.summary)}</p>${op.description ? `<p class="muted">${escape(op.description)}</p>` : ''}
        ${params ? `<p>parameters: ${params}</p>` : ''}<p class="small">${statuses}</p></section>`;
    }
  }
  document.getElementById('routes').innerHTML = html;
});
