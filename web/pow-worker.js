// Proof-of-work solver, run in a Web Worker so the page stays responsive while it hashes.
// Finds a nonce such that SHA-256("<challenge>:<nonce>") starts with `difficulty` zero bits
// (domain/pow.py checks it with one hash).
"use strict";

function zeroBits(bytes) {
  let bits = 0;
  for (const b of bytes) {
    if (b === 0) { bits += 8; continue; }
    return bits + Math.clz32(b) - 24;
  }
  return bits;
}

self.onmessage = async (event) => {
  const { challenge, difficulty } = event.data;
  const encoder = new TextEncoder();
  for (let n = 0; ; n++) {
    const digest = await crypto.subtle.digest("SHA-256", encoder.encode(challenge + ":" + n));
    if (zeroBits(new Uint8Array(digest)) >= difficulty) {
      self.postMessage({ nonce: String(n), hashes: n + 1 });
      return;
    }
    if (n % 4096 === 4095) self.postMessage({ progress: n + 1 });
  }
};
