// seatmap-v1 decoder: the browser half of domain/seatmap_codec.py (read that docstring for
// the format). Plain JS, no build; pinned with the Python encoder by
// tests/fixtures/seatmap_vectors.json (tests/integration/test_web_stadium.py runs them here).
"use strict";

(function (root) {
  const STATUS = ["available", "held", "sold"];
  const AVAILABLE = 0;

  class CodecError extends Error {}

  function bytesOf(base64) {
    let bin;
    try { bin = atob(base64); } catch (e) { throw new CodecError("bad base64"); }
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  // Unsigned LEB128 varints (values stay far below 2^53, so plain numbers are exact).
  function varints(bytes) {
    const out = [];
    let value = 0, scale = 1;
    for (const byte of bytes) {
      value += (byte & 0x7f) * scale;
      if (byte & 0x80) { scale *= 128; if (scale > 2 ** 49) throw new CodecError("varint too long"); }
      else { out.push(value); value = 0; scale = 1; }
    }
    if (scale !== 1) throw new CodecError("truncated varint");
    return out;
  }

  // One block's states -> Uint8Array of status codes, one per seat.
  function decodeBlock(text, seats) {
    if (typeof text !== "string" || !text) throw new CodecError("empty block states");
    const data = bytesOf(text.slice(1));
    const codes = new Uint8Array(seats);
    if (text[0] === "B") {
      if (data.length !== ((seats + 3) >> 2)) throw new CodecError("bitmap length");
      for (let i = 0; i < seats; i++) codes[i] = (data[i >> 2] >> (6 - 2 * (i & 3))) & 3;
    } else if (text[0] === "R") {
      let at = 0;
      for (const v of varints(data)) {
        const length = Math.floor(v / 4);
        if (length < 1 || at + length > seats) throw new CodecError("runs do not cover the block");
        codes.fill(v % 4, at, at + length);
        at += length;
      }
      if (at !== seats) throw new CodecError("runs do not cover the block");
    } else {
      throw new CodecError("unknown block encoding " + text[0]);
    }
    if (codes.some((c) => c > 2)) throw new CodecError("status code 3 is not used");
    return codes;
  }

  // A delta's runs -> [[block, start, length, status], ...].
  function decodeRuns(text) {
    const v = varints(bytesOf(text));
    if (v.length % 3) throw new CodecError("delta runs come in threes");
    const runs = [];
    let block = 0, end = 0;
    for (let k = 0; k < v.length; k += 3) {
      if (v[k]) { block += v[k]; end = 0; }
      const start = end + v[k + 1], length = Math.floor(v[k + 2] / 4), status = v[k + 2] % 4;
      if (length < 1 || status > 2) throw new CodecError("bad run");
      runs.push([block, start, length, status]);
      end = start + length;
    }
    return runs;
  }

  // Every seat's status code, block by block, with the seats left per section kept current.
  class Board {
    constructor(layout) {
      this.layout = layout;
      this.blocks = layout.blocks.map((b) => ({ ...b,
        seats: (b.last_row - b.first_row + 1) * b.seats_per_row,
        codes: new Uint8Array((b.last_row - b.first_row + 1) * b.seats_per_row) }));
      this.bySection = new Map(layout.sections.map((s) => [s.name, []]));
      this.blocks.forEach((b, k) => this.bySection.get(b.section).push(k));
      this.left = new Map();
      this.version = -1;
      this.recount();
    }

    recount() {
      for (const name of this.bySection.keys()) this.left.set(name, 0);
      for (const b of this.blocks) {
        let free = 0;
        for (const c of b.codes) if (c === AVAILABLE) free++;
        this.left.set(b.section, this.left.get(b.section) + free);
      }
    }

    load(states, version, first = 0) {
      states.forEach((text, k) => {
        const b = this.blocks[first + k];
        b.codes = decodeBlock(text, b.seats);
      });
      this.version = version;
      this.recount();
    }

    // Applies a delta; returns the set of sections it touched.
    applyRuns(text, version) {
      const touched = new Set();
      for (const [k, start, length, status] of decodeRuns(text)) {
        const b = this.blocks[k];
        if (!b || start + length > b.seats) throw new CodecError("run outside the layout");
        for (let i = start; i < start + length; i++) {
          const old = b.codes[i];
          if (old === status) continue;
          if (old === AVAILABLE) this.left.set(b.section, this.left.get(b.section) - 1);
          if (status === AVAILABLE) this.left.set(b.section, this.left.get(b.section) + 1);
          b.codes[i] = status;
        }
        touched.add(b.section);
      }
      if (version !== undefined) this.version = version;
      return touched;
    }

    // (block index, seat index) of "A-2-3", or null.
    locate(seatId) {
      const [section, row, number] = seatId.split("-");
      for (const k of this.bySection.get(section) || []) {
        const b = this.blocks[k], r = +row, n = +number;
        if (r >= b.first_row && r <= b.last_row && n >= 1 && n <= b.seats_per_row) {
          return [k, (r - b.first_row) * b.seats_per_row + n - 1];
        }
      }
      return null;
    }

    code(section, row, number) {
      const at = this.locate(`${section}-${row}-${number}`);
      return at ? this.blocks[at[0]].codes[at[1]] : -1;
    }

    status(seatId) {
      const at = this.locate(seatId);
      return at ? STATUS[this.blocks[at[0]].codes[at[1]]] : null;
    }

    // {seat id: status} of every seat (tests compare it with the server's map).
    toObject() {
      const out = {};
      for (const b of this.blocks) {
        b.codes.forEach((c, i) => {
          out[`${b.section}-${b.first_row + Math.floor(i / b.seats_per_row)}-${i % b.seats_per_row + 1}`] = STATUS[c];
        });
      }
      return out;
    }
  }

  root.Seatmap = { STATUS, CodecError, decodeBlock, decodeRuns, Board };
})(typeof window !== "undefined" ? window : globalThis);
