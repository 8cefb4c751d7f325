// otavan LoRaWAN payload codec (codec version 1) for network-server
// consoles: The Things Stack and ChirpStack v4 "JavaScript functions"
// payload codecs. Paste the whole file as the device profile's (ChirpStack)
// or the application's / end device's (The Things Stack) codec.
//
// - decodeUplink({bytes, fPort}): a meter's STATUS uplink as
//   {"message":"status","version_tag","pending_confirm","last_result",
//   "battery","campaign"}.
// - encodeDownlink({data}): a command from {"command":"wake","campaign",
//   "delay_s","window_s","network","version_tag"}, {"command":"cancel",
//   "campaign"} or {"command":"status_request"}. Durations are rounded as
//   the Rust codec rounds them (otavan_protocol::lora).
// - decodeDownlink({bytes, fPort}): a command back to that JSON.
//
// The JSON is the Rust codec's (`otavan lora decode`), and both are tested
// against the same golden vectors (protocol/tests/vectors/lora.json). The
// wire format is documented in protocol/src/lora.rs.

var OTAVAN_FPORT = 200;
var CODEC_VERSION = 1;
var CODE = { WAKE: 1, CANCEL: 2, STATUS_REQUEST: 3, STATUS: 8 };
var RESULTS = ["none", "updated", "already_current", "refused", "download_failed",
  "verification_failed", "no_space", "interrupted", "wifi_join_failed", "cancelled",
  "reverted"];
// Each duration field: seconds per fine unit, the minutes flag, the
// largest count in either unit.
var DELAY = { field: "delay", fineStep: 1, minutesFlag: 0x8000, maxCount: 0x7fff };
var WINDOW = { field: "window", fineStep: 10, minutesFlag: 0x80, maxCount: 0x7f };

function CodecError(kind, message) {
  this.kind = kind;
  this.message = message;
}

function fail(kind, message) {
  throw new CodecError(kind, message);
}

function hex(bytes) {
  var s = "";
  for (var i = 0; i < bytes.length; i++) {
    s += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
  }
  return s;
}

function be16(bytes, at) {
  return (bytes[at] << 8) | bytes[at + 1];
}

function header(bytes) {
  if (bytes.length === 0) fail("empty", "empty message");
  var version = bytes[0] >> 4;
  if (version !== CODEC_VERSION) {
    fail("unsupported_version", "unsupported codec version " + version);
  }
  return bytes[0] & 0x0f;
}

function checkLength(code, bytes, lengths) {
  if (lengths.indexOf(bytes.length) < 0) {
    fail("bad_length", "command " + code + " must be " + lengths.join(" or ") +
      " bytes, got " + bytes.length);
  }
}

function fineHolds(scale, secs) {
  return secs % scale.fineStep === 0 && secs / scale.fineStep <= scale.maxCount;
}

function readDuration(scale, bits) {
  var count = bits & (scale.minutesFlag - 1);
  if ((bits & scale.minutesFlag) === 0) return count * scale.fineStep;
  var secs = count * 60;
  if (fineHolds(scale, secs)) {
    fail("non_canonical", scale.field + " is in minutes but the finer unit holds it");
  }
  return secs;
}

// The nearest representable number of seconds (ties: the larger), as
// otavan_protocol::lora::Delay / Window round.
function nearest(scale, secs) {
  if (typeof secs !== "number" || !isFinite(secs) || secs < 0) {
    fail("invalid", scale.field + "_s must be a number of seconds, not " + secs);
  }
  var max = scale.maxCount * 60;
  if (secs > max) fail("out_of_range", scale.field + " " + secs + " s is above " + max + " s");
  function roundTo(step) {
    return Math.floor((secs + step / 2) / step) * step;
  }
  var fine = Math.min(roundTo(scale.fineStep), scale.maxCount * scale.fineStep);
  var coarse = roundTo(60);
  var ef = Math.abs(fine - secs);
  var ec = Math.abs(coarse - secs);
  if (ef < ec) return fine;
  if (ec < ef) return coarse;
  return Math.max(fine, coarse);
}

function writeDuration(scale, secs) {
  return fineHolds(scale, secs) ? secs / scale.fineStep : scale.minutesFlag | (secs / 60);
}

function integer(data, name, max) {
  var v = data[name];
  if (typeof v !== "number" || v % 1 !== 0 || v < 0 || v > max) {
    fail("invalid", name + " must be an integer from 0 to " + max + ", not " + v);
  }
  return v;
}

function tagBytes(tag) {
  if (tag === null || tag === undefined) return [];
  if (typeof tag !== "string" || !/^[0-9a-fA-F]{8}$/.test(tag)) {
    fail("invalid", "version_tag must be 8 hex digits or null");
  }
  var out = [];
  for (var i = 0; i < 8; i += 2) out.push(parseInt(tag.substr(i, 2), 16));
  return out;
}

function encodeCommand(data) {
  if (data === null || typeof data !== "object") fail("invalid", "data must be an object");
  switch (data.command) {
    case "wake": {
      var campaign = integer(data, "campaign", 0xffff);
      var delay = writeDuration(DELAY, nearest(DELAY, data.delay_s));
      var window = writeDuration(WINDOW, nearest(WINDOW, data.window_s));
      var network = integer(data, "network", 0xff);
      return [0x10 | CODE.WAKE, campaign >> 8, campaign & 0xff, delay >> 8, delay & 0xff,
        window, network].concat(tagBytes(data.version_tag));
    }
    case "cancel": {
      var c = integer(data, "campaign", 0xffff);
      return [0x10 | CODE.CANCEL, c >> 8, c & 0xff];
    }
    case "status_request":
      return [0x10 | CODE.STATUS_REQUEST];
    default:
      fail("invalid", "command must be wake, cancel or status_request, not " + data.command);
  }
}

function decodeCommand(bytes) {
  var code = header(bytes);
  switch (code) {
    case CODE.WAKE:
      checkLength(code, bytes, [7, 11]);
      return {
        command: "wake",
        campaign: be16(bytes, 1),
        delay_s: readDuration(DELAY, be16(bytes, 3)),
        window_s: readDuration(WINDOW, bytes[5]),
        network: bytes[6],
        version_tag: bytes.length === 11 ? hex(bytes.slice(7, 11)) : null
      };
    case CODE.CANCEL:
      checkLength(code, bytes, [3]);
      return { command: "cancel", campaign: be16(bytes, 1) };
    case CODE.STATUS_REQUEST:
      checkLength(code, bytes, [1]);
      return { command: "status_request" };
    default:
      fail("unknown_command", "unknown command code " + code);
  }
}

function decodeStatus(bytes) {
  var code = header(bytes);
  if (code !== CODE.STATUS) fail("unknown_command", "unknown command code " + code);
  checkLength(code, bytes, [10]);
  if ((bytes[5] & 0xfe) !== 0) fail("reserved_bits", "reserved flag bits set: " + bytes[5]);
  var result = bytes[6];
  return {
    message: "status",
    version_tag: hex(bytes.slice(1, 5)),
    pending_confirm: (bytes[5] & 1) === 1,
    last_result: result < RESULTS.length ? RESULTS[result] : result,
    battery: bytes[7],
    campaign: be16(bytes, 8)
  };
}

function answer(f) {
  try {
    return f();
  } catch (e) {
    if (e instanceof CodecError) return { errors: [e.message], kind: e.kind };
    throw e;
  }
}

function toArray(bytes) {
  return Array.prototype.slice.call(bytes || []);
}

function decodeUplink(input) {
  return answer(function () {
    if (input.fPort !== OTAVAN_FPORT) {
      fail("other_port", "fPort " + input.fPort + " is not the otavan port " + OTAVAN_FPORT);
    }
    return { data: decodeStatus(toArray(input.bytes)), warnings: [] };
  });
}

function encodeDownlink(input) {
  return answer(function () {
    return { bytes: encodeCommand(input.data), fPort: OTAVAN_FPORT, warnings: [] };
  });
}

function decodeDownlink(input) {
  return answer(function () {
    if (input.fPort !== undefined && input.fPort !== OTAVAN_FPORT) {
      fail("other_port", "fPort " + input.fPort + " is not the otavan port " + OTAVAN_FPORT);
    }
    return { data: decodeCommand(toArray(input.bytes)), warnings: [] };
  });
}

if (typeof module !== "undefined") {
  module.exports = { decodeUplink: decodeUplink, encodeDownlink: encodeDownlink,
    decodeDownlink: decodeDownlink, OTAVAN_FPORT: OTAVAN_FPORT };
}
