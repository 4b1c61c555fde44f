// The page's script: one session, one EventSource, everything it saw on `window.dz`.
//
// It does what a browser client of the session protocol (docs/protocol.md §1) does and no
// more: the reconnects are EventSource's own (it resends the last `id:` as Last-Event-ID
// after `retry:` ms), so the test sees what a real browser does across a deploy.
'use strict';

const params = new URLSearchParams(location.search);
const router = params.get('router');
const query = params.get('query');

// What the test reads. `ids` are the `lastEventId` of every protocol event in arrival
// order; `breaks` the connection errors (readyState then, last id seen before it).
const dz = (window.dz = {
  created: null,
  ids: [],
  types: [],
  takeovers: [],
  opens: 0,
  breaks: [],
  closed: false,
  done: null,
  digest: null,
  failure: null,
});

const status = (text) => {
  document.getElementById('status').textContent = text;
};

// SHA-256 of the concatenated token texts, lowercase hex: `done.content_sha256`'s
// definition. crypto.subtle needs a secure context; http://127.0.0.1 is one.
async function sha256Hex(text) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

async function main() {
  const created = await fetch(new URL('/v1/sessions', router), {
    method: 'POST',
    // application/json is not a "simple" content type: this POST needs a CORS preflight.
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query }),
  });
  if (created.status !== 201) {
    dz.failure = `POST /v1/sessions answered ${created.status}: ${await created.text()}`;
    status(dz.failure);
    return;
  }
  dz.created = await created.json();
  const url = new URL(dz.created.events_url, router);
  url.searchParams.set('token', dz.created.resume_token);
  const es = new EventSource(url);
  let text = '';

  es.onopen = () => {
    dz.opens += 1;
    status(`open #${dz.opens}`);
  };
  const record = (e) => {
    dz.ids.push(Number(e.lastEventId));
    dz.types.push(e.type);
    const data = JSON.parse(e.data);
    if (e.type === 'token') text += data.text;
    if (e.type === 'session' && data.takeover) dz.takeovers.push(data.takeover);
    if (e.type === 'done') {
      es.close();
      sha256Hex(text).then((hex) => {
        dz.digest = hex;
        dz.done = data;
        status(`done: ${data.status}`);
      });
    }
  };
  for (const type of ['session', 'plan', 'step', 'token', 'tool', 'usage', 'done']) {
    es.addEventListener(type, record);
  }
  // `error` is both a protocol event (a MessageEvent with data, informational) and
  // EventSource's connection error (a plain Event).
  es.addEventListener('error', (e) => {
    if (e instanceof MessageEvent) {
      record(e);
      return;
    }
    dz.breaks.push({ readyState: es.readyState, lastId: dz.ids.at(-1) ?? null });
    if (es.readyState === EventSource.CLOSED) {
      dz.closed = true;
      status('stream closed by the browser');
    } else {
      status('reconnecting');
    }
  });
}

main().catch((e) => {
  dz.failure = String(e && e.stack ? e.stack : e);
  status(dz.failure);
});
