// An independent device-side check of loa commands (docs/protocol.md, version 2), in JavaScript with
// nothing but Node's built-in crypto: if this accepts what the daemon sends, firmware in another
// language can too. It shares no code with the Python side; JCS (RFC 8785) is implemented below.
//
// stdin:  one JSON object a line: {"payload": "<the command exactly as received, as a string>",
//                                  "keys": {"<kid>": "<raw Ed25519 public key, base64>"}}
// stdout: one line per input line: "ok", or the reason the command is refused.

import { createPublicKey, verify } from "node:crypto";
import { createInterface } from "node:readline";

const PROTOCOL_VERSION = 2;
const SPKI_ED25519_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

class Refusal extends Error {}

// RFC 8785. ECMAScript's JSON.stringify already writes numbers and strings as JCS wants; JCS adds
// sorting keys by UTF-16 code units, which is what Array.prototype.sort does by default.
function canonical(value) {
  if (value === null || typeof value === "boolean") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Refusal("not_canonicalizable: not a finite number");
    return JSON.stringify(value);
  }
  if (typeof value === "string") {
    // JSON.stringify would escape a lone surrogate as \udxxx; JCS refuses it instead.
    if (/\p{Cs}/u.test(value)) throw new Refusal("not_canonicalizable: lone surrogate");
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${canonical(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  throw new Refusal(`not_canonicalizable: ${typeof value}`);
}

function check(line) {
  const { payload, keys } = JSON.parse(line);
  let command;
  try {
    command = JSON.parse(payload);
  } catch {
    throw new Refusal("malformed_json");
  }
  if (command === null || typeof command !== "object" || Array.isArray(command)) throw new Refusal("malformed_json");
  if (command.v !== PROTOCOL_VERSION) throw new Refusal("bad_version");
  const { sig, ...unsigned } = command;
  if (typeof sig !== "string" || typeof command.kid !== "string" || !Object.hasOwn(keys, command.kid)) {
    throw new Refusal("bad_signature: no signature from a trusted key");
  }
  const raw = Buffer.from(keys[command.kid], "base64");
  const key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: "der", type: "spki" });
  const signed = Buffer.from(canonical(unsigned), "utf8");
  if (!verify(null, signed, key, Buffer.from(sig, "base64"))) throw new Refusal("bad_signature");
  return "ok";
}

for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (!line.trim()) continue;
  try {
    console.log(check(line));
  } catch (err) {
    if (!(err instanceof Refusal)) throw err;
    console.log(err.message);
  }
}
