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
function home() {
  $("pick").addEventListener("submit", (e) => {
    e.preventDefault();
    location.href = eventUrl("queue.html", $("event-id").value.trim());
  });
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
    es.addEventListener("sold_out", () => { es.close(); say("Sorry, this event is sold out.", "alert"); });
    es.addEventListener("expired", () => { es.close(); say("Your place in the queue expired.", "alert"); });
    es.onerror = () => { if (!opened) { es.close(); poll(t); } };
  }

  async function poll(t) {
    try {
      const s = await api(`/v1/events/${eventId}/queue/${t.ticket_id}`, { token: t.ticket_token });
      if (s.state === "admitted" && s.admission_token) return admitted(s.admission_token);
      if (s.state === "sold_out") return say("Sorry, this event is sold out.", "alert");
      show(s.position, s.eta_s);
    } catch (err) {
      if (err.status && err.status < 500 && err.status !== 429) return say(err.message, "alert");
    }
    setTimeout(() => poll(t), 1000);
  }
}

// ------------------------------------------------------------------------------ seat map
function seatsPage() {
  const eventId = params.get("event");
  const token = store.get("admission." + eventId);
  const seats = new Map();   // seat id -> button
  const prices = {};         // section -> cents
  const selected = new Set();
  let version = -1;
  let stopCountdown = null;

  if (!token) say("Pass the waiting room first to hold seats.", "alert");

  api("/v1/events/" + encodeURIComponent(eventId)).then(draw).then(connect).then(restoreHold)
    .catch((err) => say("Could not load the event: " + err.message, "alert"));

  function draw(ev) {
    $("event-name").textContent = ev.name;
    document.title = ev.name + " – seats";
    const map = $("map");
    for (const section of ev.sections) {
      prices[section.name] = section.price_cents;
      const box = document.createElement("section");
      box.className = "section";
      box.setAttribute("aria-labelledby", "sec-" + section.name);
      box.innerHTML = `<h2 id="sec-${section.name}">Section ${section.name} – ${money(section.price_cents)}</h2>`;
      for (let r = 1; r <= section.rows; r++) {
        const row = document.createElement("div");
        row.className = "row";
        row.setAttribute("role", "group");
        row.setAttribute("aria-label", `Section ${section.name} row ${r}`);
        row.innerHTML = `<span class="row-label" aria-hidden="true">Row ${r}</span>`;
        for (let n = 1; n <= section.seats_per_row; n++) {
          const id = `${section.name}-${r}-${n}`;
          const b = document.createElement("button");
          b.type = "button"; b.className = "seat"; b.textContent = n;
          b.dataset.seat = id; b.dataset.section = section.name;
          b.setAttribute("aria-pressed", "false");
          b.addEventListener("click", () => toggle(id));
          seats.set(id, b);
          setStatus(id, "available");
          row.appendChild(b);
        }
        box.appendChild(row);
      }
      map.appendChild(box);
    }
  }

  function setStatus(id, status) {
    const b = seats.get(id);
    if (!b) return;
    b.dataset.status = status;
    const [section, row, number] = id.split("-");
    const mine = b.classList.contains("mine") ? ", yours" : "";
    b.setAttribute("aria-label", `Section ${section}, row ${row}, seat ${number}, ${status}${mine}`);
    if (status !== "available" && selected.has(id)) {
      selected.delete(id); b.setAttribute("aria-pressed", "false"); summarise();
    }
  }

  // Live statuses: a snapshot, then deltas newer than what we have. EventSource reconnects
  // by itself and sends Last-Event-ID, so the server resumes where we left off.
  function connect() {
    const es = new EventSource(`/v1/events/${eventId}/availability/stream`);
    es.addEventListener("snapshot", (m) => {
      const d = JSON.parse(m.data);
      version = d.version;
      for (const [id, status] of Object.entries(d.seats)) setStatus(id, status);
      $("live-state").textContent = "live";
    });
    es.addEventListener("delta", (m) => {
      const d = JSON.parse(m.data);
      if (d.version <= version) return;
      version = d.version;
      for (const [id, status] of Object.entries(d.seats)) setStatus(id, status);
    });
    es.addEventListener("error", (m) => {
      if (m.data) $("live-state").textContent = "interrupted, reconnecting…";
    });
    es.onerror = () => { $("live-state").textContent = "reconnecting…"; };
    es.onopen = () => { $("live-state").textContent = "live"; };
  }

  function toggle(id) {
    const b = seats.get(id);
    if (store.get("hold." + eventId)) return say("You already hold seats: check out or release them.");
    if (b.dataset.status !== "available") return say(`Seat ${id} is ${b.dataset.status}.`);
    if (selected.has(id)) selected.delete(id); else selected.add(id);
    b.setAttribute("aria-pressed", String(selected.has(id)));
    summarise();
  }

  function summarise() {
    const list = [...selected];
    const total = list.reduce((sum, id) => sum + prices[seats.get(id).dataset.section], 0);
    $("selection").textContent = list.length
      ? `${list.join(", ")} – ${money(total)}` : "No seats selected.";
    $("hold").disabled = !list.length || !token;
  }

  $("hold").addEventListener("click", async () => {
    $("hold").disabled = true;
    try {
      const hold = await api(`/v1/events/${eventId}/holds`, {
        method: "POST", token, body: { seat_ids: [...selected] } });
      hold.expires_at_ms = Date.now() + hold.expires_in_s * 1000;
      store.set("hold." + eventId, hold);
      selected.clear();
      showHold(hold);
      say("Your seats are held.", "success");
    } catch (err) {
      say(err.code === "seats_unavailable" ? "Sorry, a seat was just taken. Pick again."
        : "Could not hold: " + err.message, "alert");
      summarise();
    }
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
    for (const id of hold.seat_ids) { seats.get(id)?.classList.add("mine"); seats.get(id)?.setAttribute("aria-pressed", "false"); }
    $("choose").classList.add("hidden");
    $("held").classList.remove("hidden");
    $("held-seats").textContent = hold.seat_ids.join(", ");
    $("held-price").textContent = money(hold.total_cents);
    $("to-checkout").href = eventUrl("checkout.html", eventId, { hold: hold.hold_id });
    stopCountdown = countdown($("countdown"), hold.expires_at_ms,
      () => endHold("Your hold expired and the seats were released.", "alert"));
  }

  function endHold(message, kind = "") {
    const hold = store.get("hold." + eventId);
    if (stopCountdown) stopCountdown();
    for (const id of hold ? hold.seat_ids : []) seats.get(id)?.classList.remove("mine");
    store.del("hold." + eventId);
    $("held").classList.add("hidden");
    $("choose").classList.remove("hidden");
    summarise();
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

({ home, queue: queuePage, seats: seatsPage, checkout: checkoutPage,
   confirmation: confirmationPage })[document.body.dataset.page]();
