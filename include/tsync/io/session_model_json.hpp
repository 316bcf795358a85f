#pragma once
/// \file
/// The JSON form of a session's whole-trace model (estimate::session_model:
/// a model per segment and the breaks between), and the labels every output
/// file carries (docs/outputs.md). Version 1 is the model format of
/// io/model_json.hpp (one segment); version 2 adds `parts` and `breaks`.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tsync/core/config.hpp"
#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/estimate/breaks.hpp"
#include "tsync/estimate/model.hpp"
#include "tsync/io/json.hpp"
#include "tsync/io/model_json.hpp"

namespace tsync::inline TSYNC_ABI::io {

/// What every output file says about itself (docs/outputs.md): the sign
/// convention is fixed (host = guest + offset); the clocks and the unit vary.
struct output_labels {
  std::string host_clock = "unknown";
  std::string guest_clock = "unknown";
  std::string unit = "ns";
};

/// One break as a JSON object.
inline void write_break_json(std::string& o, const estimate::clock_break& b) {
  o += "{\"kind\": ";
  json::write_string(o, estimate::to_string(b.kind));
  o += ", \"vcpu\": "; json::write_uint(o, b.vcpu);
  o += ", \"segment\": "; json::write_uint(o, b.segment);
  o += ", \"series\": "; json::write_uint(o, b.series);
  o += ", \"guest_before\": "; json::write_int(o, b.guest_before);
  o += ", \"guest_after\": "; json::write_int(o, b.guest_after);
  o += ", \"host_before\": "; json::write_int(o, b.host_before);
  o += ", \"host_after\": "; json::write_int(o, b.host_after);
  o += ", \"step\": ";
  if (b.step) json::write_int(o, *b.step);
  else o += "null";
  o += ", \"reason\": ";
  json::write_string(o, b.reason);
  o += '}';
}

/// A session's whole-trace model of one vCPU as JSON. One part: format
/// version 1 (what every reader of models reads; the part is segment 0).
/// Several parts (breaks): version 2, `parts` holds each segment's pieces
/// with its id, epoch and guest-time span; a version-1 reader refuses it
/// rather than reading one timeline across a break. Both carry the labels
/// (`sign`, `unit`, `host_clock`, `guest_clock`) and the `breaks`.
[[nodiscard]] inline std::string session_model_to_json(const estimate::session_model& m, const output_labels& l,
                                                       std::uint32_t vcpu) {
  std::string o;
  const bool v1 = m.parts.size() == 1 && m.parts[0].segment == 0;
  o += "{\n  \"format\": \"tsync-model\",\n  \"version\": ";
  o += v1 ? "1" : "2";
  o += ",\n  \"sign\": \"host = guest + offset\",\n  \"unit\": ";
  json::write_string(o, l.unit);
  o += ",\n  \"host_clock\": ";
  json::write_string(o, l.host_clock);
  o += ",\n  \"guest_clock\": ";
  json::write_string(o, l.guest_clock);
  o += ",\n  \"vcpu\": ";
  json::write_uint(o, vcpu);
  o += ",\n  \"estimator\": ";
  json::write_string(o, m.estimator);
  o += ",\n  \"breaks\": [";
  for (std::size_t i = 0; i < m.breaks.size(); ++i) {
    o += i ? ",\n    " : "\n    ";
    write_break_json(o, m.breaks[i]);
  }
  o += m.breaks.empty() ? "]" : "\n  ]";
  if (v1) {
    o += ",\n  \"segments\": ";
    detail::write_model_pieces(o, m.parts[0].model);
    o += "\n}\n";
    return o;
  }
  o += ",\n  \"parts\": [";
  for (std::size_t i = 0; i < m.parts.size(); ++i) {
    const auto& p = m.parts[i];
    o += i ? ",\n  {" : "\n  {";
    o += "\"segment\": "; json::write_uint(o, p.segment);
    o += ", \"epoch\": "; json::write_uint(o, p.epoch);
    o += ", \"first_guest\": "; json::write_int(o, p.first_guest);
    o += ", \"last_guest\": "; json::write_int(o, p.last_guest);
    o += ", \"estimator\": "; json::write_string(o, p.model.estimator);
    o += ",\n  \"segments\": ";
    detail::write_model_pieces(o, p.model);
    o += '}';
  }
  o += "\n  ]\n}\n";
  return o;
}

namespace detail {
/// The `breaks` of a session model (lenient: unknown fields are ignored, a
/// malformed entry keeps its defaults; the breaks are informational).
inline void read_breaks(const json::value& root, std::vector<estimate::clock_break>& out) {
  if (const json::value* br = root.find("breaks"); br != nullptr && br->k == json::value::kind::array) {
    for (const auto& bv : br->items) {
      estimate::clock_break b;
      if (bv.k != json::value::kind::object) continue;
      if (const auto* k = bv.find("kind"); k != nullptr && k->k == json::value::kind::string)
        if (auto kk = estimate::break_kind_from_string(k->text)) b.kind = *kk;
      auto get = [&](const char* key, std::int64_t& dst) {
        if (const auto* v = bv.find(key); v != nullptr && v->k == json::value::kind::number)
          if (auto x = v->as_int64()) dst = *x;
      };
      std::int64_t seg = 0, vc = 0, ser = 0;
      get("segment", seg);
      get("vcpu", vc);
      get("series", ser);
      b.segment = static_cast<std::uint32_t>(std::clamp<std::int64_t>(seg, 0, std::numeric_limits<std::uint32_t>::max()));
      b.vcpu = static_cast<std::uint32_t>(std::clamp<std::int64_t>(vc, 0, std::numeric_limits<std::uint32_t>::max()));
      b.series = static_cast<std::uint32_t>(std::clamp<std::int64_t>(ser, 0, std::numeric_limits<std::uint32_t>::max()));
      get("guest_before", b.guest_before);
      get("guest_after", b.guest_after);
      get("host_before", b.host_before);
      get("host_after", b.host_after);
      if (const auto* rs = bv.find("reason"); rs != nullptr && rs->k == json::value::kind::string) b.reason = rs->text;
      out.push_back(std::move(b));
    }
  }
}
}  // namespace detail

/// Read a session model: version 1 (any model file: one part, segment 0,
/// its span from its pieces) or version 2 (`parts`, `breaks`). Errors as
/// `read_model_json`, with the field path (`parts[1].segments[0].hard`).
[[nodiscard]] inline expected<estimate::session_model, text_error> read_session_model_json(
    std::string_view text, json::parse_limits limits = {}) {
  detail::model_reader r;
  std::int64_t ver = 0;
  auto doc = detail::model_document(text, limits, 2, r, ver);
  if (!doc) return unexpected(doc.error());
  const json::value& root = *doc;
  estimate::session_model sm;
  if (const json::value* e = root.find("estimator"); e != nullptr && e->k == json::value::kind::string)
    sm.estimator = e->text;
  if (ver == 1) {
    auto m = detail::model_of(r, root, "");
    if (!m) return unexpected(m.error());
    estimate::model_part p;
    p.first_guest = m->segments.front().begin;
    p.last_guest = std::max(m->segments.back().begin, m->segments.back().end - 1);
    p.model = std::move(*m);
    sm.parts.push_back(std::move(p));
  } else {
    const json::value* parts = r.member(root, "parts", json::value::kind::array, "");
    for (std::size_t i = 0; parts != nullptr && !r.error && i < parts->items.size(); ++i) {
      const auto& pv = parts->items[i];
      const std::string path = "parts[" + std::to_string(i) + "].";
      if (pv.k != json::value::kind::object) return unexpected(text_error{errc::invalid_argument, 0, path, path + ": must be an object"});
      std::int64_t seg = 0, epoch = 0;
      estimate::model_part p;
      if (!r.get_int(pv, "segment", path, seg) || !r.get_int(pv, "epoch", path, epoch) ||
          !r.get_int(pv, "first_guest", path, p.first_guest) || !r.get_int(pv, "last_guest", path, p.last_guest))
        break;
      if (seg < 0 || epoch < 0 || seg > std::numeric_limits<std::uint32_t>::max() ||
          epoch > std::numeric_limits<std::uint32_t>::max()) {
        r.fail(errc::out_of_range, path + "segment", "segment and epoch must be 32-bit unsigned");
        break;
      }
      p.segment = static_cast<std::uint32_t>(seg);
      p.epoch = static_cast<std::uint32_t>(epoch);
      auto m = detail::model_of(r, pv, path);
      if (!m) return unexpected(m.error());
      p.model = std::move(*m);
      sm.parts.push_back(std::move(p));
    }
    if (!r.error && sm.parts.empty()) r.fail(errc::empty_input, "parts", "the model has no parts");
  }
  detail::read_breaks(root, sm.breaks);
  if (r.error) return unexpected(*r.error);
  return sm;
}

}  // namespace tsync::io
