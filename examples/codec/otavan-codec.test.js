// Runs the JavaScript codec against the golden vectors the Rust codec is
// tested with: node examples/codec/otavan-codec.test.js [VECTORS.json]
// (cargo test runs it: protocol/tests/js_codec.rs). Prints
// "N passed, M failed" and exits non-zero on any failure.
"use strict";
const assert = require("node:assert");
const fs = require("node:fs");
const path = require("node:path");
const codec = require("./otavan-codec.js");

const file = process.argv[2] || path.join(__dirname, "../../protocol/tests/vectors/lora.json");
const vectors = JSON.parse(fs.readFileSync(file, "utf8"));
const bytesOf = (h) => Array.from(Buffer.from(h, "hex"));
let passed = 0;
let failed = 0;

function check(name, f) {
  try {
    f();
    passed++;
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.message}`);
  }
}

const fPort = vectors.fport;
for (const v of vectors.downlinks) {
  check(`downlink ${v.name}`, () => {
    assert.deepStrictEqual(codec.decodeDownlink({ bytes: bytesOf(v.hex), fPort }), { data: v.json, warnings: [] });
    assert.deepStrictEqual(codec.encodeDownlink({ data: v.json }), { bytes: bytesOf(v.hex), fPort, warnings: [] });
  });
}
for (const v of vectors.uplinks) {
  check(`uplink ${v.name}`, () => {
    assert.deepStrictEqual(codec.decodeUplink({ bytes: bytesOf(v.hex), fPort }), { data: v.json, warnings: [] });
  });
}
for (const v of vectors.encode) {
  check(`encode ${v.name}`, () => {
    const out = codec.encodeDownlink({ data: v.json });
    if (v.error) {
      assert.strictEqual(out.kind, v.error, JSON.stringify(out));
      assert.strictEqual(out.errors.length, 1);
    } else {
      assert.deepStrictEqual(out.bytes, bytesOf(v.hex));
    }
  });
}
for (const v of vectors.invalid_downlinks) {
  check(`invalid downlink ${v.name}`, () => {
    const out = codec.decodeDownlink({ bytes: bytesOf(v.hex), fPort });
    assert.strictEqual(out.kind, v.error, JSON.stringify(out));
    assert.ok(out.errors[0].length > 0 && out.data === undefined);
  });
}
for (const v of vectors.invalid_uplinks) {
  check(`invalid uplink ${v.name}`, () => {
    const out = codec.decodeUplink({ bytes: bytesOf(v.hex), fPort });
    assert.strictEqual(out.kind, v.error, JSON.stringify(out));
  });
}
check("uplink on another port", () => {
  const out = codec.decodeUplink({ bytes: bytesOf(vectors.uplinks[0].hex), fPort: 1 });
  assert.strictEqual(out.kind, "other_port");
});
check("node Buffer and Uint8Array inputs", () => {
  const v = vectors.uplinks[0];
  assert.deepStrictEqual(codec.decodeUplink({ bytes: new Uint8Array(bytesOf(v.hex)), fPort }).data, v.json);
});

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
