// The operator console: sign in with the admin token (this tab's session storage), pick an
// event, watch its numbers live (GET /v1/events/{id}/admin/stream, read with fetch so the
// token goes in the Authorization header, never in a URL), and use the controls that exist:
// admission rate, section prices, closing the event.
import { drawChart } from './chart.js';

const TOKEN_KEY = 'tk.admin';
const WINDOW_S = 300;
const $ = id => document.getElementById(id);
const token = () => sessionStorage.getItem(TOKEN_KEY);
const history = [];  // snapshots of the last five minutes, oldest first
let latest = null;

function say(text, kind = '') {
  $('status').textContent = text;
  $('status').className = 'status ' + kind;
}

function show(view) {
  for (const id of ['signin', 'events-view', 'console']) $(id).hidden = id !== view;
  $('sign-out').hidden = view === 'signin';
}

async function api(method, path, body) {
  const response = await fetch(path, { method, headers: { Authorization: `Bearer ${token()}`,
    ...(body ? { 'Content-Type': 'application/json' } : {}) }, body: body && JSON.stringify(body) });
  const data = await response.json().catch(() => ({}));
  if (response.status === 401) signOut('The admin token was refused; sign in again.');
  if (!response.ok) throw new Error(data.error ? data.error.message : `HTTP ${response.status}`);
  return data;
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  show('signin');
  if (message) say(message, 'alert');
}

const fmt = {
  int: n => n === null || n === undefined ? '–' : Math.round(n).toLocaleString('en'),
  rate: n => (Math.round(n * 10) / 10).toLocaleString('en'),
  money: cents => (cents / 100).toLocaleString('en', { minimumFractionDigits: 2, maximumFractionDigits: 2 }),
  duration(s) {
    if (s === null || s === undefined) return '–';
    if (s === 0) return 'sold out';
    if (s < 60) return `${Math.round(s)} s`;
    if (s < 3600) return `${Math.floor(s / 60)} m ${Math.round(s % 60)} s`;
    return `${Math.floor(s / 3600)} h ${Math.round(s / 60 % 60)} m`;
  },
};

function render(snap) {
  $('event-name').textContent = snap.name;
  $('event-state').textContent = snap.closed ? 'closed' : 'open';
  $('event-state').className = 'badge' + (snap.closed ? ' closed' : '');
  $('updated').textContent = 'updated ' + new Date(snap.at * 1000).toLocaleTimeString('en-GB');
  $('n-waiting').textContent = fmt.int(snap.waiting);
  $('n-admitted').textContent = fmt.int(snap.admitted);
  $('n-rate').textContent = `${fmt.rate(snap.admitted_per_s)} (${fmt.rate(snap.admission_rate_per_s)})`;
  $('n-held').textContent = fmt.int(snap.seats_held);
  $('n-sold').textContent = `${fmt.int(snap.seats_sold)} / ${fmt.int(snap.seats_total)}`;
  $('n-revenue').textContent = fmt.money(snap.revenue_cents);
  $('n-sellout').textContent = fmt.duration(snap.sellout_in_s);
  $('n-lag').textContent = snap.position_lag_s === null ? '–' : `${Math.round(snap.position_lag_s * 1000)} ms`;
  const e = snap.errors;
  $('n-errors').textContent = `${fmt.int(e.server)} · ${fmt.int(e.rate_limited)} · ${fmt.int(e.refused)}`;
  syncSections(snap.sections);
  drawCharts(snap.at);
}

function drawCharts(now) {
  const series = (label, color, pick) => ({ label, color, points: history.map(s => [s.at, pick(s)]) });
  const opts = { now, windowS: WINDOW_S };
  drawChart($('c-queue'), [series('waiting', '#1f5fbf', s => s.waiting)], { ...opts, format: fmt.int });
  drawChart($('c-rate'), [series('measured', '#1b7f3b', s => s.admitted_per_s),
    series('set', '#b26a00', s => s.admission_rate_per_s)], { ...opts, format: fmt.rate });
  drawChart($('c-seats'), [series('held', '#b26a00', s => s.seats_held),
    series('sold', '#6b6b6b', s => s.seats_sold)], { ...opts, format: fmt.int });
  drawChart($('c-revenue'), [series('revenue', '#1f5fbf', s => s.revenue_cents / 100)],
    { ...opts, format: v => v.toLocaleString('en') });
}

function syncSections(sections) {
  const select = $('price-section');
  const names = sections.map(s => s.name).join(',');
  if (select.dataset.names !== names) {
    select.replaceChildren(...sections.map(s => new Option(s.name, s.name)));
    select.dataset.names = names;
  }
  select.dataset.prices = JSON.stringify(Object.fromEntries(sections.map(s => [s.name, s.price_cents])));
  for (const option of select.options) {
    const section = sections.find(s => s.name === option.value);
    option.textContent = `${section.name} (now ${fmt.money(section.price_cents)})`;
  }
}

function receive(name, data) {
  if (name === 'history') {
    history.splice(0, history.length, ...data.snapshots);
  } else if (name === 'snapshot') {
    history.push(data);
    while (history.length && history[0].at < data.at - WINDOW_S) history.shift();
  } else if (name === 'error') {
    say(`Numbers not updated: ${data.message}`, 'alert');
    return;
  }
  latest = history[history.length - 1] || latest;
  if (latest) render(latest);
}

// Server-sent events over fetch: blocks separated by a blank line, `event:` and `data:` lines.
function dispatch(block) {
  let name = 'message', data = '';
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) name = line.slice(6).trim();
    else if (line.startsWith('data:')) data += line.slice(5).trim();
  }
  if (data) receive(name, JSON.parse(data));
}

async function follow(eventId) {
  for (;;) {
    try {
      const response = await fetch(`/v1/events/${encodeURIComponent(eventId)}/admin/stream`, {
        headers: { Authorization: `Bearer ${token()}`, Accept: 'text/event-stream' } });
      if (response.status === 401) return signOut('The admin token was refused; sign in again.');
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        return say(body.error ? body.error.message : `HTTP ${response.status}`, 'alert');
      }
      $('status').textContent === 'Reconnecting…' && say('');
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        for (let end; (end = buffer.indexOf('\n\n')) >= 0;) {
          dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (error) {
      console.warn('console stream', error);
    }
    say('Reconnecting…');
    await new Promise(resolve => setTimeout(resolve, 2000));
  }
}

async function listEvents() {
  show('events-view');
  const { events } = await fetch('/v1/events?limit=100').then(r => r.json());
  $('events').replaceChildren(...events.map(e => {
    const item = document.createElement('li');
    const link = Object.assign(document.createElement('a'), { href: `?event=${e.event_id}`,
      textContent: `${e.name}` });
    item.append(link, ` · ${e.state} · ${e.seats_available}/${e.seats_total} seats left · ${e.event_id}`);
    return item;
  }));
  if (!events.length) say('No open events.');
}

function openConsole(eventId) {
  show('console');
  $('event-id').textContent = eventId;
  const act = (form, run) => form.addEventListener('submit', async event => {
    event.preventDefault();
    try { say(await run(), 'success'); } catch (error) { say(error.message, 'alert'); }
  });
  act($('rate-form'), async () => {
    const rate = Number($('rate').value);
    await api('PATCH', `/v1/events/${eventId}`, { admission_rate_per_s: rate });
    return `Admission rate set to ${rate}/s.`;
  });
  act($('price-form'), async () => {
    const section = $('price-section').value, cents = Math.round(Number($('price').value) * 100);
    await api('PATCH', `/v1/events/${eventId}/sections/${encodeURIComponent(section)}`, { price_cents: cents });
    return `Section ${section} now costs ${fmt.money(cents)} (holds made before keep their price).`;
  });
  act($('close-form'), async () => {
    if (!confirm(`Close ${latest ? latest.name : eventId}? Holds and joins will be refused.`)) return 'Not closed.';
    await api('POST', `/v1/events/${eventId}/close`);
    return 'The event is closed.';
  });
  follow(eventId);
}

$('signin-form').addEventListener('submit', event => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $('admin-token').value.trim());
  $('admin-token').value = '';
  say('');
  start();
});
$('sign-out').addEventListener('click', () => { signOut(); say('Signed out.'); });
$('open-form').addEventListener('submit', event => {
  event.preventDefault();
  location.search = `?event=${encodeURIComponent($('open-id').value.trim())}`;
});

function start() {
  if (!token()) return show('signin');
  const eventId = new URLSearchParams(location.search).get('event');
  if (eventId) openConsole(eventId);
  else listEvents().catch(error => say(error.message, 'alert'));
}
start();
