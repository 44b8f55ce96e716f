// Ticketing web client: plain JS, no build, nothing from a CDN. Each page calls the JSON API
// of the same origin; tokens live in sessionStorage (per tab), so two tabs are two buyers.
"use strict";

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const store = {
  get: (k) => JSON.parse(sessionStorage.getItem("tk." + k) || "null"),
  set: (k, v) => sessionStorage.setItem("tk." + k, JSON.stringify(v)),
  del: (k) => sessionStorage.removeItem("tk." + k),
};

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(path, { method = "GET", body, token, headers = {} } = {}) {
  const h = { ...headers };
  if (body !== undefined) h["Content-Type"] = "application/json";
  if (token) h.Authorization = "Bearer " + token;
  const response = await fetch(path, { method, headers: h,
    body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const e = data.error || {};
    throw new ApiError(response.status, e.code || "http_" + response.status, e.message || "failed");
  }
  return data;
}

const money = (cents) => "$" + (cents / 100).toFixed(2);
const say = (text, kind = "") => { const s = $("status"); s.textContent = text; s.className = "status " + kind; };
const clock = (seconds) => {
  const s = Math.max(0, Math.ceil(seconds));
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
};
const eventUrl = (page, eventId, extra = {}) =>
  page + "?" + new URLSearchParams({ event: eventId, ...extra }).toString();

// A countdown to an absolute time (ms); calls onEnd once when it reaches zero.
function countdown(element, endsAtMs, onEnd) {
  let done = false;
  const tick = () => {
    const left = (endsAtMs - Date.now()) / 1000;
    element.textContent = clock(left);
    element.setAttribute("aria-label", Math.ceil(Math.max(0, left)) + " seconds left");
    if (left <= 0 && !done) { done = true; clearInterval(timer); onEnd(); }
  };
  const timer = setInterval(tick, 250);
  tick();
  return () => { done = true; clearInterval(timer); };
}

// Sign-in: the user token names who joins (the server takes the user from it, never from the
// body). A platform's login puts its OIDC token in sessionStorage as "tk.user_token"
// ({user, token, expires_at_ms}); in development the stack issues one for the name typed in.
async function signIn(name) {
  const known = store.get("user_token");
  if (known && known.user === name && known.expires_at_ms > Date.now() + 60_000) return known.token;
  try {
    const issued = await api("/v1/dev/token", { method: "POST", body: { user_id: name } });
    store.set("user_token", { user: issued.user_id, token: issued.token,
                              expires_at_ms: Date.now() + issued.expires_in_s * 1000 });
    store.set("user", issued.user_id);
    return issued.token;
  } catch (err) {
    if (err.status === 404) throw new ApiError(401, "sign_in_required", "please sign in first");
    throw err;
  }
}

// Proof of work in a Web Worker (web/pow-worker.js): the page keeps answering while it hashes.
function solvePow(challenge, difficulty) {
  return new Promise((resolve, reject) => {
    const worker = new Worker("pow-worker.js");
    worker.onmessage = (e) => {
      if (e.data.nonce === undefined) return;  // progress
      worker.terminate();
      resolve(e.data.nonce);
    };
    worker.onerror = () => { worker.terminate(); reject(new Error("the browser check failed")); };
    worker.postMessage({ challenge, difficulty });
  });
}

// ---------------------------------------------------------------------------------- home
const STATES = { upcoming: "On sale soon", on_sale: "On sale now", sold_out: "Sold out",
                 closed: "Closed" };
const when = (iso) => new Date(iso).toLocaleString(undefined,
  { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
const priceRange = (ev) => ev.price_min_cents === ev.price_max_cents ? money(ev.price_min_cents)
  : money(ev.price_min_cents) + " \u2013 " + money(ev.price_max_cents);
// Every text from the API goes in through textContent: an event's name is never markup.
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

function home() {
  $("pick").addEventListener("submit", (e) => {
    e.preventDefault();
    location.href = eventUrl("event.html", $("event-id").value.trim());
  });
  api("/v1/events").then(({ events }) => {
    if (!events.length) say("No events are on sale right now.");
    events.sort((a, b) => a.onsale_at.localeCompare(b.onsale_at));
    for (const ev of events) {
      const link = el("a");
      link.href = eventUrl("event.html", ev.event_id);
      const meta = el("span", "event-meta");
      const state = el("strong", "state", STATES[ev.state] || ev.state);
      state.dataset.state = ev.state;
      meta.append(el("span", "", when(ev.onsale_at)), state, el("span", "", priceRange(ev)),
                  el("span", "", ev.sections.map((s) => s.name).join(", ")),
                  el("span", "", ev.seats_available.toLocaleString() + " seats left"));
      link.append(el("span", "event-name", ev.name), meta);
      const item = el("li");
      item.append(link);
      $("events").append(item);
    }
  }).catch((err) => say("Could not load the events: " + err.message, "alert"));
}

// --------------------------------------------------------------------------------- event
function eventPage() {
  const eventId = params.get("event");
  api("/v1/events/" + encodeURIComponent(eventId)).then((ev) => {
    document.title = ev.name;
    $("event-name").textContent = ev.name;
    $("when").textContent = "On sale " + when(ev.onsale_at);
    $("state").textContent = STATES[ev.state] || ev.state;
    $("state").dataset.state = ev.state;
    for (const s of ev.sections) {
      const row = el("tr");
      row.append(el("th", "", s.name), el("td", "", money(s.price_cents)),
                 el("td", "", s.seats_available.toLocaleString()));
      row.firstChild.scope = "row";
      $("sections").append(row);
    }
    if (ev.state === "closed") { say("This event is closed."); return; }
    $("enter").href = eventUrl("queue.html", ev.event_id);
    $("enter").classList.remove("hidden");
  }, () => say("This event does not exist.", "alert"));
}

// ------------------------------------------------------------------------- waiting room
function queuePage() {
  const eventId = params.get("event");
  let first = null;
  let powDifficulty = 0;
  api("/v1/events/" + encodeURIComponent(eventId)).then(
    (ev) => { $("event-name").textContent = "– " + ev.name; powDifficulty = ev.pow_difficulty || 0; },
    () => say("This event does not exist.", "alert"));
  const ticket = store.get("ticket." + eventId);
  if (ticket) follow(ticket);
  $("join").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const token = await signIn($("user-id").value.trim());
      const body = {};
      if (powDifficulty > 0) {  // the event asks for a proof of work against bots
        say("Checking your browser… this takes a few seconds.");
        const c = await api(`/v1/events/${eventId}/queue/challenge`, { token });
        body.pow = { challenge: c.challenge, nonce: await solvePow(c.challenge, c.difficulty) };
      }
      const joined = await api(`/v1/events/${eventId}/queue`, { method: "POST", body, token });
      store.set("ticket." + eventId, joined);
      follow(joined);
    } catch (err) { say("Could not join: " + err.message, "alert"); }
  });

  function show(position, eta) {
    $("join").classList.add("hidden");
    $("waiting").classList.remove("hidden");
    if (position !== null && position !== undefined) {
      if (first === null || position > first) first = Math.max(1, position);
      $("position").textContent = position;
      const pct = Math.round(100 * (first - position) / first);
      $("progress").value = pct; $("progress").textContent = pct + "%";
    }
    if (eta !== null && eta !== undefined) $("eta").textContent = eta < 60 ? Math.ceil(eta) + " s" : clock(eta);
  }

  function admitted(token) {
    store.set("admission." + eventId, token);
    $("position").textContent = "0"; $("progress").value = 100;
    say("It is your turn! Taking you to the seat map…", "success");
    setTimeout(() => { location.href = eventUrl("seats.html", eventId); }, 600);
  }

  const SOLD_OUT_FOR_NOW = "Sold out for now. Keep this page open: seats that are not " +
    "bought go back on sale, and you keep your place in line.";

  // The queue stream when the server has it; polling the ticket's status otherwise.
  function follow(t) {
    show(t.position ?? null, t.eta_s ?? null);
    say("Waiting for your turn…");
    const url = `/v1/events/${eventId}/queue/${t.ticket_id}/stream?token=` +
      encodeURIComponent(t.ticket_token);
    let opened = false;
    const es = new EventSource(url);
    es.onopen = () => { opened = true; };
    es.addEventListener("position", (m) => { const d = JSON.parse(m.data); show(d.position, d.eta_s); });
    es.addEventListener("admitted", (m) => { es.close(); admitted(JSON.parse(m.data).admission_token); });
    // Sold out *for now*: seats held by others come back if they are not bought, and the room
    // admits again, so the page keeps its place and its stream (the server sends `admitted`).
    es.addEventListener("sold_out", () => say(SOLD_OUT_FOR_NOW, "alert"));
    es.addEventListener("expired", () => { es.close(); say("Your place in the queue expired.", "alert"); });
    es.onerror = () => { if (!opened) { es.close(); poll(t); } };
  }

  async function poll(t) {
    try {
      const s = await api(`/v1/events/${eventId}/queue/${t.ticket_id}`, { token: t.ticket_token });
      if (s.state === "admitted" && s.admission_token) return admitted(s.admission_token);
      if (s.state === "sold_out") say(SOLD_OUT_FOR_NOW, "alert");
      else show(s.position, s.eta_s);
    } catch (err) {
      if (err.status && err.status < 500 && err.status !== 429) return say(err.message, "alert");
    }
    setTimeout(() => poll(t), 1000);
  }
}

// ------------------------------------------------------------------------------ seat map
// Stadium scale: the venue's sections as a handful of tiles (price, live seats left), one
// section at a time drawn on a canvas (5,000 seats are 5,000 rectangles, not DOM nodes), and
// "best available in this section" in one tap. Live statuses come from the compact stream
// (seatmap-v1, decoded by seatmap.js). The canvas is one focusable element: arrow keys move a
// seat cursor and the current seat is announced in a live region.
function seatsPage() {
  const eventId = params.get("event");
  const token = store.get("admission." + eventId);
  const selected = new Set();
  const mine = new Set();
  const stats = { snapshots: 0, deltas: 0 };
  let ev = null, board = null, es = null, current = null, stopCountdown = null;
  let cursor = { row: 1, number: 1 }, zoom = 1, frame = 0, pending = new Set(), overviewDrawn = false;
  const canvas = $("seat-canvas");
  const css = getComputedStyle(document.documentElement);
  const colour = ["--ok", "--held", "--sold"].map((v) => css.getPropertyValue(v).trim());
  const mineColour = css.getPropertyValue("--mine").trim();
  const focusColour = css.getPropertyValue("--focus").trim();
  window.ticketingSeats = { stats, get board() { return board; }, pause, resume, fresh, open: openSection };

  if (!token) say("Pass the waiting room first to hold seats.", "alert");

  Promise.all([api("/v1/events/" + encodeURIComponent(eventId)),
               api(`/v1/events/${encodeURIComponent(eventId)}/layout`)])
    .then(([details, layout]) => { setup(details, layout); connect(); restoreHold(); })
    .catch((err) => say("Could not load the event: " + err.message, "alert"));

  const sectionOf = (name) => ev.sections.find((s) => s.name === name);
  const seatName = (id) => { const [s, r, n] = id.split("-"); return `section ${s}, row ${r}, seat ${n}`; };

  function setup(details, layout) {
    ev = details;
    board = new Seatmap.Board(layout);
    $("event-name").textContent = ev.name;
    document.title = ev.name + " – seats";
    const quantity = $("quantity");
    for (let q = 1; q <= ev.max_seats_per_user; q++) quantity.add(new Option(String(q), String(q), q === 2, q === 2));
    const venue = $("venue");
    for (const s of ev.sections) {
      const tile = document.createElement("button");
      tile.type = "button"; tile.className = "tile"; tile.dataset.section = s.name;
      tile.innerHTML = `<span class="tile-name">Section ${s.name}</span>` +
        `<span class="tile-price">${money(s.price_cents)}</span><span class="tile-left"></span>`;
      tile.addEventListener("click", () => openSection(s.name));
      venue.appendChild(tile);
    }
    drawOverview();
    const wanted = (location.hash.match(/section=([A-Za-z0-9_]+)/) || [])[1];
    if (wanted && sectionOf(wanted)) openSection(wanted);
  }

  function drawOverview() {
    for (const tile of $("venue").children) {
      const s = sectionOf(tile.dataset.section);
      const total = s.rows * s.seats_per_row;
      const left = board.version >= 0 ? board.left.get(s.name) : s.seats_available;
      const share = left / total;
      tile.dataset.level = left === 0 ? "none" : share < 0.1 ? "few" : share < 0.5 ? "some" : "many";
      tile.querySelector(".tile-left").textContent = left ? `${left.toLocaleString("en-US")} left` : "Sold out";
      tile.setAttribute("aria-label", `Section ${s.name}, ${money(s.price_cents)}, ` +
        `${left.toLocaleString("en-US")} of ${total.toLocaleString("en-US")} seats left`);
    }
    if (!overviewDrawn && board.version >= 0) {
      overviewDrawn = true;  // first paint of live counts (the benchmark reads this mark)
      requestAnimationFrame(() => performance.mark("overview-live"));
    }
  }

  function openSection(name) {
    performance.clearMarks("zoom-start"); performance.mark("zoom-start");
    current = name;
    const s = sectionOf(name);
    $("overview").classList.add("hidden");
    $("zoom").classList.remove("hidden");
    $("zoom-title").textContent = `Section ${name} – ${money(s.price_cents)}`;
    canvas.setAttribute("aria-label", `Seats of section ${name}: ${s.rows} rows of ${s.seats_per_row} seats`);
    $("best").textContent = `Best available in section ${name}`;
    $("best").disabled = !token || !!store.get("hold." + eventId);
    cursor = { row: 1, number: Math.ceil(s.seats_per_row / 2) };
    zoom = 1;
    history.replaceState(null, "", "#section=" + name);
    draw();
    requestAnimationFrame(() => {
      performance.clearMarks("zoom-drawn"); performance.mark("zoom-drawn");
      performance.clearMeasures("section-zoom");
      performance.measure("section-zoom", "zoom-start", "zoom-drawn");
    });
  }

  $("back").addEventListener("click", () => {
    current = null;
    $("zoom").classList.add("hidden");
    $("overview").classList.remove("hidden");
    $("best").disabled = true; $("best").textContent = "Pick a section first";
    history.replaceState(null, "", location.pathname + location.search);
    drawOverview();
  });
  $("zoom-in").addEventListener("click", () => { zoom = Math.min(8, zoom * 2); draw(); showCursor(); });
  $("zoom-out").addEventListener("click", () => { zoom = Math.max(1, zoom / 2); draw(); });

  function geometry() {
    const s = sectionOf(current);
    const label = 26, top = 4;
    const avail = Math.max(120, $("canvas-wrap").clientWidth - 2);
    const fit = Math.max(3, Math.min(24, Math.floor((avail - label) / s.seats_per_row)));
    const cell = Math.min(40, fit * zoom);
    return { s, label, top, cell, width: label + cell * s.seats_per_row, height: top + cell * s.rows };
  }

  function draw() {
    if (!current) return;
    const g = geometry();
    const left = board.version >= 0 ? board.left.get(current) : g.s.seats_available;
    $("zoom-left").textContent = `${left.toLocaleString("en-US")} of ` +
      `${(g.s.rows * g.s.seats_per_row).toLocaleString("en-US")} seats left`;
    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(g.width * dpr) || canvas.height !== Math.round(g.height * dpr)) {
      canvas.width = Math.round(g.width * dpr); canvas.height = Math.round(g.height * dpr);
      canvas.style.width = g.width + "px"; canvas.style.height = g.height + "px";
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, g.width, g.height);
    const gap = g.cell >= 6 ? 1 : g.cell >= 3 ? 0.5 : 0;  // small seats stay visibly apart
    ctx.fillStyle = "#555"; ctx.font = `${Math.min(12, Math.max(8, g.cell))}px system-ui`;
    ctx.textBaseline = "middle";
    const every = Math.ceil(10 / g.cell);
    for (const k of board.bySection.get(current)) {
      const b = board.blocks[k];
      for (let i = 0; i < b.seats; i++) {
        const row = b.first_row + Math.floor(i / b.seats_per_row), number = i % b.seats_per_row + 1;
        const id = `${current}-${row}-${number}`;
        ctx.fillStyle = selected.has(id) || (mine.has(id) && b.codes[i] !== 0) ? mineColour : colour[b.codes[i]];
        ctx.fillRect(g.label + (number - 1) * g.cell + gap, g.top + (row - 1) * g.cell + gap,
                     g.cell - 2 * gap, g.cell - 2 * gap);
      }
    }
    ctx.fillStyle = "#555";
    for (let r = 1; r <= g.s.rows; r++) {
      if ((r - 1) % every === 0) ctx.fillText(String(r), 0, g.top + (r - 0.5) * g.cell);
    }
    if (document.activeElement === canvas) {
      ctx.strokeStyle = focusColour; ctx.lineWidth = 2;
      const pad = Math.max(2, g.cell / 4);
      ctx.strokeRect(g.label + (cursor.number - 1) * g.cell - pad, g.top + (cursor.row - 1) * g.cell - pad,
                     g.cell + 2 * pad, g.cell + 2 * pad);
    }
  }

  function schedule(sections) {
    for (const s of sections) pending.add(s);
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      drawOverview();
      if (current && pending.has(current)) draw();
      pending.clear();
      for (const id of [...selected]) {
        if (board.status(id) !== "available") { selected.delete(id); summarise(); }
      }
    });
  }

  const statusAt = (row, number) => Seatmap.STATUS[board.code(current, row, number)];

  function showCursor() {
    const g = geometry();
    const id = `${current}-${cursor.row}-${cursor.number}`;
    const picked = selected.has(id) ? ", picked" : mine.has(id) ? ", yours" : "";
    $("seat-cursor").textContent = `Row ${cursor.row}, seat ${cursor.number}, ${statusAt(cursor.row, cursor.number)}${picked}`;
    const wrap = $("canvas-wrap"), x = g.label + (cursor.number - 1) * g.cell;
    if (x < wrap.scrollLeft || x + g.cell > wrap.scrollLeft + wrap.clientWidth) wrap.scrollLeft = x - wrap.clientWidth / 2;
    draw();
  }

  canvas.addEventListener("focus", showCursor);
  canvas.addEventListener("blur", draw);
  canvas.addEventListener("keydown", (e) => {
    const s = sectionOf(current);
    const moves = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0],
                    PageUp: [-10, 0], PageDown: [10, 0] };
    if (moves[e.key]) {
      cursor.row = Math.min(s.rows, Math.max(1, cursor.row + moves[e.key][0]));
      cursor.number = Math.min(s.seats_per_row, Math.max(1, cursor.number + moves[e.key][1]));
    } else if (e.key === "Home") cursor.number = 1;
    else if (e.key === "End") cursor.number = s.seats_per_row;
    else if (e.key === "Enter" || e.key === " ") toggle(`${current}-${cursor.row}-${cursor.number}`);
    else return;
    e.preventDefault();
    showCursor();
  });
  canvas.addEventListener("click", (e) => {
    const g = geometry(), box = canvas.getBoundingClientRect();
    const number = Math.floor((e.clientX - box.left - g.label) / g.cell) + 1;
    const row = Math.floor((e.clientY - box.top - g.top) / g.cell) + 1;
    if (number < 1 || row < 1 || number > g.s.seats_per_row || row > g.s.rows) return;
    cursor = { row, number };
    toggle(`${current}-${row}-${number}`);
    showCursor();
  });

  // Live statuses: a snapshot, then deltas newer than what we have. EventSource reconnects
  // by itself and sends Last-Event-ID, so the server resumes where we left off.
  function connect(lastSeen) {
    if (es) es.close();
    const query = new URLSearchParams({ format: "compact" });
    if (lastSeen !== undefined) query.set("last_event_id", String(lastSeen));
    es = new EventSource(`/v1/events/${eventId}/availability/stream?${query}`);
    es.addEventListener("snapshot", (m) => {
      const d = JSON.parse(m.data);
      board.load(d.blocks, d.version);
      stats.snapshots++;
      $("live-state").textContent = "live";
      schedule(board.bySection.keys());
    });
    es.addEventListener("delta", (m) => {
      const d = JSON.parse(m.data);
      if (d.version <= board.version) return;
      stats.deltas++;
      schedule(board.applyRuns(d.runs, d.version));
    });
    es.addEventListener("error", (m) => {
      if (m.data) $("live-state").textContent = "interrupted, reconnecting…";
    });
    es.onerror = () => { $("live-state").textContent = "reconnecting…"; };
    es.onopen = () => { $("live-state").textContent = "live"; };
  }
  function pause() { if (es) es.close(); es = null; $("live-state").textContent = "paused"; }
  function resume() { connect(board.version); }  // what a reconnect sends: Last-Event-ID
  function fresh() { connect(); }

  function toggle(id) {
    if (store.get("hold." + eventId)) return say("You already hold seats: check out or release them.");
    const status = board.status(id);
    if (status !== "available") return say(`Seat ${id} is ${status}.`);
    if (selected.has(id)) selected.delete(id); else selected.add(id);
    summarise();
    draw();
  }

  function summarise() {
    const list = [...selected];
    const total = list.reduce((sum, id) => sum + sectionOf(id.split("-")[0]).price_cents, 0);
    $("selection").textContent = list.length
      ? `${list.join(", ")} – ${money(total)}` : "No seats selected.";
    $("hold").disabled = !list.length || !token;
  }

  async function holdWith(body, button) {
    button.disabled = true;
    try {
      const hold = await api(`/v1/events/${eventId}/holds`, { method: "POST", token, body });
      hold.expires_at_ms = Date.now() + hold.expires_in_s * 1000;
      store.set("hold." + eventId, hold);
      selected.clear();
      showHold(hold);
      say(`Held for you: ${hold.seat_ids.map(seatName).join("; ")}.`, "success");
    } catch (err) {
      say(err.code === "seats_unavailable" ? "Sorry, those seats are not available. Pick again."
        : "Could not hold: " + err.message, "alert");
      summarise();
      if (current) $("best").disabled = !token;
    }
  }

  $("hold").addEventListener("click", () => holdWith({ seat_ids: [...selected] }, $("hold")));
  $("best-form").addEventListener("submit", (e) => {
    e.preventDefault();
    if (current) holdWith({ section: current, quantity: Number($("quantity").value) }, $("best"));
  });

  $("release").addEventListener("click", async () => {
    const hold = store.get("hold." + eventId);
    if (!hold) return;
    try { await api(`/v1/holds/${hold.hold_id}`, { method: "DELETE", token }); } catch (err) { /* gone */ }
    endHold("Released. The seats are available again.");
  });

  function restoreHold() {
    const hold = store.get("hold." + eventId);
    if (hold && hold.expires_at_ms > Date.now()) showHold(hold);
    else if (hold) endHold("Your hold expired and the seats were released.", "alert");
  }

  function showHold(hold) {
    for (const id of hold.seat_ids) mine.add(id);
    $("choose").classList.add("hidden");
    $("held").classList.remove("hidden");
    $("held-seats").textContent = hold.seat_ids.join(", ");
    $("held-price").textContent = money(hold.total_cents);
    $("to-checkout").href = eventUrl("checkout.html", eventId, { hold: hold.hold_id });
    stopCountdown = countdown($("countdown"), hold.expires_at_ms,
      () => endHold("Your hold expired and the seats were released.", "alert"));
    draw();
  }

  function endHold(message, kind = "") {
    if (stopCountdown) stopCountdown();
    mine.clear();
    store.del("hold." + eventId);
    $("held").classList.add("hidden");
    $("choose").classList.remove("hidden");
    if (current) $("best").disabled = !token;
    summarise();
    draw();
    say(message, kind);
  }
}

// ------------------------------------------------------------------------------ checkout
function checkoutPage() {
  const eventId = params.get("event");
  const holdId = params.get("hold");
  const token = store.get("admission." + eventId);
  const key = store.get("idem." + holdId) || crypto.randomUUID();
  store.set("idem." + holdId, key);  // a retried payment is never charged twice
  $("back").href = eventUrl("seats.html", eventId);
  let expired = false;

  api("/v1/holds/" + holdId, { token }).then((hold) => {
    $("seats").textContent = hold.seat_ids.join(", ");
    $("total").textContent = money(hold.total_cents);
    $("pay-button").textContent = "Pay " + money(hold.total_cents);
    if (hold.status !== "active") return expire("This hold is " + hold.status + ".");
    countdown($("countdown"), Date.now() + hold.expires_in_s * 1000,
      () => expire("Your hold expired and the seats were released."));
  }).catch((err) => say("Could not load your hold: " + err.message, "alert"));

  function expire(message) {
    expired = true;
    $("pay-button").disabled = true;
    store.del("hold." + eventId);
    say(message, "alert");
  }

  $("pay").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (expired) return;
    $("pay-button").disabled = true;
    say("Paying…");
    try {
      const booking = await api(`/v1/holds/${holdId}/checkout`, {
        method: "POST", token, headers: { "Idempotency-Key": key },
        body: { payment_token: $("card").value } });
      store.del("hold." + eventId);
      location.href = eventUrl("confirmation.html", eventId, { booking: booking.booking_id });
    } catch (err) {
      if (err.code === "hold_expired") return expire("Your hold expired before payment.");
      say(err.code === "payment_declined" ? "The card was declined; try another." :
        "Payment failed: " + err.message, "alert");
      $("pay-button").disabled = false;
    }
  });
}

// -------------------------------------------------------------------------- confirmation
function confirmationPage() {
  const eventId = params.get("event");
  const token = store.get("admission." + eventId);
  api("/v1/bookings/" + params.get("booking"), { token }).then((b) => {
    $("title").textContent = "Booking confirmed";
    $("booking-id").textContent = b.booking_id;
    $("seats").textContent = b.seat_ids.join(", ");
    $("total").textContent = money(b.total_cents);
    say("Enjoy the show! Your booking is confirmed.", "success");
  }).catch((err) => say("Could not load the booking: " + err.message, "alert"));
}

({ home, event: eventPage, queue: queuePage, seats: seatsPage, checkout: checkoutPage,
   confirmation: confirmationPage })[document.body.dataset.page]();
