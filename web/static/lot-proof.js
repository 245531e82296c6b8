// The consumer page's proof check, in the browser (DESIGN.md, "QR codes and the consumer page").
//
// The page carries, in <script type="application/json" id="lot-proofs">, the platform's
// C2SP verifier key and one C2SP tlog-proof@v1 bundle per public entry of the lot:
//
//   c2sp.org/tlog-proof@v1
//   extra <base64 of the entry's RFC 8785 bytes>
//   index <leaf index = seq - 1>
//   <base64 inclusion-path hash>...          (RFC 9162 section 2.1.3, sibling of the leaf first)
//   <empty line>
//   <signed checkpoint: origin, tree size, base64 root, empty line, "— name base64(keyid||sig)">
//
// For each bundle this script hashes the entry bytes itself (leaf = SHA-256(0x00 || bytes)),
// walks the inclusion path to the checkpoint's root, and checks the checkpoint's Ed25519
// signature against the key. Then every element of the page marked data-fact, inside an
// element naming its entry (data-entry="<origin>#<seq>"), must equal the value at that path
// of the proven entry. Only when all of that holds does the page say it is verified; any
// mismatch shows a failure and no claim. SHA-256 and Ed25519 come from WebCrypto; where
// WebCrypto has no Ed25519 (some in-app browsers) the vendored @noble/ed25519 verifies.

const NOBLE = new URL("vendor/noble-ed25519-3.2.0.js", import.meta.url);
const PROOF_HEADER = "c2sp.org/tlog-proof@v1";
const PUBLIC_KINDS = ["public_declaration", "public_recall"];
const utf8 = new TextEncoder();

class VerifyError extends Error {}

function fail(message) {
  throw new VerifyError(message);
}

function b64(text, what) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) fail(`${what} is not base64`);
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function hash32(text, what) {
  const h = b64(text, what);
  if (h.length !== 32) fail(`${what} is not a 32-byte hash`);
  return h;
}

function decimal(text, what) {
  if (!/^(0|[1-9][0-9]{0,15})$/.test(text)) fail(`${what} is not a decimal`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) fail(`${what} is too large`);
  return n;
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function sha256(...parts) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", concat(parts)));
}

const LEAF = Uint8Array.of(0x00); // RFC 9162 2.1.1 domain separation
const NODE = Uint8Array.of(0x01);
const leafHash = (data) => sha256(LEAF, data);
const nodeHash = (left, right) => sha256(NODE, left, right);

function same(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// --- Ed25519: WebCrypto, else the vendored pure-JavaScript implementation ----------------

export const engine = { name: null };

async function ed25519Verify(publicKey, signature, message) {
  if (engine.name !== "noble") {
    let key = null;
    try {
      key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    } catch (_) {
      key = null; // no Ed25519 in this WebCrypto: fall back below
    }
    if (key) {
      engine.name = "webcrypto";
      // A false here is a bad signature, not a missing feature: no fallback.
      return crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
    }
  }
  const ed = await import(NOBLE.href);
  engine.name = "noble";
  try {
    return await ed.verifyAsync(signature, message, publicKey, { zip215: false }); // RFC 8032
  } catch (_) {
    return false;
  }
}

// --- C2SP signed note, checkpoint and tlog-proof ------------------------------------------

async function parseVerifierKey(vkey) {
  // name+keyid+base64: the base64 may hold "+" itself, so split twice only
  const first = vkey.indexOf("+");
  const second = vkey.indexOf("+", first + 1);
  if (first < 1 || second < 0) fail("malformed verifier key");
  const [name, idHex, data] = [vkey.slice(0, first), vkey.slice(first + 1, second), vkey.slice(second + 1)];
  if (!/^[0-9a-f]{8}$/.test(idHex)) fail("malformed key ID");
  const raw = b64(data, "key");
  if (raw.length !== 33 || raw[0] !== 0x01) fail("not an Ed25519 verifier key");
  const id = parseInt(idHex, 16);
  // key ID = SHA-256(name || 0x0A || 0x01 || public key)[:4]
  const digest = await sha256(utf8.encode(name), Uint8Array.of(0x0a), raw);
  if (new DataView(digest.buffer).getUint32(0) !== id) fail("the key ID does not match the key");
  return { name, id, publicKey: raw.slice(1) };
}

function parseNote(note) {
  const split = note.lastIndexOf("\n\n");
  if (split < 0 || !note.endsWith("\n")) fail("the checkpoint is not a signed note");
  const text = note.slice(0, split + 1);
  const signatures = note
    .slice(split + 2, -1)
    .split("\n")
    .map((line) => {
      if (!line.startsWith("\u2014 ")) fail("malformed signature line");
      const [name, data, extra] = line.slice(2).split(" ");
      if (!data || extra !== undefined) fail("malformed signature line");
      const raw = b64(data, "signature");
      if (raw.length < 5) fail("signature too short");
      return { name, id: new DataView(raw.buffer).getUint32(0), signature: raw.slice(4) };
    });
  return { text, signatures };
}

function parseCheckpoint(text) {
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3 || lines.some((l) => !l)) fail("malformed checkpoint");
  return {
    origin: lines[0],
    size: decimal(lines[1], "tree size"),
    root: hash32(lines[2], "root hash"),
  };
}

function parseProof(text) {
  const split = text.indexOf("\n\n");
  if (split < 0) fail("malformed proof: no checkpoint");
  const head = text.slice(0, split).split("\n");
  if (head[0] !== PROOF_HEADER) fail(`the proof is not ${PROOF_HEADER}`);
  let at = 1;
  let extra = null;
  if (head[at] && head[at].startsWith("extra ")) extra = b64(head[at++].slice(6), "entry bytes");
  if (!head[at] || !head[at].startsWith("index ")) fail("malformed proof: no index");
  const index = decimal(head[at].slice(6), "index");
  const path = head.slice(at + 1).map((h, i) => hash32(h, `proof hash ${i}`));
  return { extra, index, path, checkpoint: text.slice(split + 2) };
}

// RFC 9162 2.1.3.2: verify the inclusion of leaf `index` in the tree of `size` leaves.
async function verifyInclusion(index, size, leaf, path, root) {
  if (index >= size) fail(`index ${index} is outside the tree of ${size}`);
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) fail("the inclusion proof is too long");
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) fail("the inclusion proof is too short");
  if (!same(r, root)) fail("the entry is not in the signed checkpoint (root mismatch)");
}

export async function verifyProof(text, key) {
  const proof = parseProof(text);
  if (!proof.extra) fail("the proof carries no entry");
  const note = parseNote(proof.checkpoint);
  const sig = note.signatures.find((s) => s.name === key.name && s.id === key.id);
  if (!sig) fail("the checkpoint is not signed by the platform's key");
  if (!(await ed25519Verify(key.publicKey, sig.signature, utf8.encode(note.text)))) {
    fail("the checkpoint's signature is not valid");
  }
  const checkpoint = parseCheckpoint(note.text);
  if (!checkpoint.origin.startsWith(`${key.name}/ledger/`)) fail("a checkpoint of another log");
  await verifyInclusion(proof.index, checkpoint.size, await leafHash(proof.extra), proof.path, checkpoint.root);
  let entry;
  try {
    entry = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(proof.extra));
  } catch (_) {
    fail("the proven bytes are not an entry");
  }
  if (entry.log !== checkpoint.origin) fail("the entry belongs to another ledger");
  if (entry.seq !== proof.index + 1) fail("the entry's seq is not its leaf index + 1");
  if (!PUBLIC_KINDS.includes(entry.kind)) fail(`a ${entry.kind} entry is not public`);
  return { entry, checkpoint };
}

// --- the page ----------------------------------------------------------------------------

function valueAt(entry, path) {
  return path.split(".").reduce((v, k) => (v === null || v === undefined ? undefined : v[k]), entry);
}

function format(template, values) {
  return template.replace(/\{(\w+)\}/g, (_, k) => String(values[k]));
}

// Check each element naming an entry against that proven entry; returns what was proven.
function checkPage(proven) {
  const found = [];
  for (const box of document.querySelectorAll("[data-entry]")) {
    const v = proven.get(box.dataset.entry);
    if (!v) fail(`no proof of ${box.dataset.entry}`);
    const { entry } = v;
    if (entry.kind !== box.dataset.kind) fail(`${box.dataset.entry} is a ${entry.kind}`);
    const code = box.dataset.creditCode;
    const lot = box.dataset.lot;
    if (entry.kind === "public_declaration") {
      if (entry.body.lot_code !== lot || !entry.log.endsWith(`/ledger/${code}`)) {
        fail("the declaration is of another lot");
      }
    } else if (!(entry.body.lots || []).some((l) => l.credit_code === code && l.lot_code === lot)) {
      fail("the recall notice does not name this lot");
    }
    const facts = box.querySelectorAll("[data-fact]");
    for (const el of facts) {
      const shown = el.dataset.expect !== undefined ? el.dataset.expect : el.textContent.trim();
      const stated = valueAt(entry, el.dataset.fact);
      if (stated === undefined || stated === null || String(stated) !== shown) {
        fail(`the page shows ${el.dataset.fact} = ${shown}, the entry says ${stated}`);
      }
    }
    found.push({ box, facts, ...v });
  }
  return found;
}

async function run() {
  const section = document.getElementById("proof");
  const data = document.getElementById("lot-proofs");
  if (!section || !data) return;
  const status = document.getElementById("proof-status");
  const msg = section.dataset;
  section.hidden = false;
  section.dataset.state = "checking";
  status.textContent = msg.msgChecking;
  if (!globalThis.crypto || !crypto.subtle) {
    section.dataset.state = "unsupported"; // e.g. a page opened over plain http
    status.textContent = msg.msgUnsupported;
    return;
  }
  try {
    const { vkey, proofs } = JSON.parse(data.textContent);
    const key = await parseVerifierKey(vkey);
    const proven = new Map();
    for (const text of proofs) {
      const v = await verifyProof(text, key);
      proven.set(`${v.entry.log}#${v.entry.seq}`, v);
    }
    const found = checkPage(proven);
    const list = document.getElementById("proof-entries");
    let claim = null;
    for (const { box, facts, entry, checkpoint } of found) {
      for (const el of facts) el.classList.add("proven");
      const item = document.createElement("li");
      item.textContent = format(msg.msgEntry, { seq: entry.seq, log: entry.log, n: checkpoint.size });
      list.append(item);
      if (entry.kind === "public_declaration") {
        claim = checkpoint.size;
      } else {
        const note = box.querySelector(".proof-note");
        note.textContent = `✓ ${format(msg.msgRecall, { n: checkpoint.size })}`;
        note.hidden = false;
      }
    }
    section.dataset.engine = engine.name || "";
    if (claim === null) {
      section.hidden = true; // nothing of the lot itself is declared: no claim about it
      section.dataset.state = "no-declaration";
      return;
    }
    section.dataset.state = "ok";
    section.dataset.checkpoint = String(claim);
    status.textContent = `✓ ${format(msg.msgOk, { n: claim })}`;
  } catch (err) {
    for (const el of document.querySelectorAll(".proven")) el.classList.remove("proven");
    for (const el of document.querySelectorAll(".proof-note")) el.hidden = true;
    section.hidden = false;
    section.dataset.state = "fail";
    section.dataset.engine = engine.name || "";
    status.textContent = `✗ ${msg.msgFail}`;
    const why = document.createElement("code");
    why.className = "proof-why";
    why.textContent = err instanceof VerifyError ? err.message : String(err);
    status.append(document.createElement("br"), why);
  }
}

run();
