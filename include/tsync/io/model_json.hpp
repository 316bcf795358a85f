#pragma once
/// \file
/// The JSON form of an estimated model (estimate/model.hpp): `model_to_json`
/// and `read_model_json` (schema in docs/estimators.md).
///
/// The reader is linear in the document and bounded by `json::parse_limits`
/// (16 MiB, 2^18 values unless overridden). Its errors are `text_error`s: the
/// line of a JSON syntax error (from its byte offset), or for a well-formed
/// document the path of the field concerned in `field` (e.g.
/// `segments[2].hard.lo[0]`) with a message naming it.

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
#include "tsync/estimate/model.hpp"
#include "tsync/io/json.hpp"

namespace tsync::inline TSYNC_ABI::io {

namespace detail {
template <class = void>
inline void write_model_lines(std::string& o, const std::vector<estimate::line>& ls) {
  o += '[';
  for (std::size_t i = 0; i < ls.size(); ++i) {
    if (i) o += ',';
    o += '[';
    json::write_int(o, ls[i].offset);
    o += ',';
    json::write_int(o, ls[i].slope_q48);
    o += ']';
  }
  o += ']';
}
}  // namespace detail

namespace detail {
/// The `"segments": [...]` array of a model (its pieces).
template <class = void>
inline void write_model_pieces(std::string& o, const estimate::model& m) {
  using namespace estimate;
  const auto& segments = m.segments;
  o += "[";
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const auto& s = segments[i];
    if (i) o += ',';
    o += "\n    {";
    o += "\"begin\": "; json::write_int(o, s.begin);
    o += ", \"end\": "; json::write_int(o, s.end);
    o += ", \"ref\": "; json::write_int(o, s.ref);
    o += ", \"offset\": "; json::write_int(o, s.fit.offset);
    o += ", \"slope_q48\": "; json::write_int(o, s.fit.slope_q48);
    o += ", \"drift_ppb\": "; json::write_double(o, q48_to_slope(s.fit.slope_q48) * 1e9);
    o += ", \"cause\": "; json::write_string(o, to_string(s.diag.cause));
    o += ",\n     \"hard\": {\"lo\": "; write_model_lines(o, s.lo);
    o += ", \"hi\": "; write_model_lines(o, s.hi);
    if (auto hb = m.hard_bounds(at_ns<guest>(s.ref))) {
      o += ", \"lo_at_ref\": "; json::write_int(o, raw_ns(hb->lo) - s.ref);
      o += ", \"hi_at_ref\": "; json::write_int(o, raw_ns(hb->hi) - s.ref);
    }
    o += "},\n     \"stat\": ";
    if (s.stat) {
      o += "{\"var_offset\": "; json::write_double(o, s.stat->var_offset);
      o += ", \"cov\": "; json::write_double(o, s.stat->cov);
      o += ", \"var_slope\": "; json::write_double(o, s.stat->var_slope);
      o += ", \"k\": "; json::write_double(o, s.stat->k);
      o += ", \"half_width_at_ref\": "; json::write_double(o, s.stat->half_width(0.0));
      o += '}';
    } else {
      o += "null";
    }
    o += ",\n     \"diagnostics\": {\"probes_used\": "; json::write_uint(o, s.diag.stats.probes_used);
    o += ", \"probes_rejected\": "; json::write_uint(o, s.diag.stats.probes_rejected);
    o += ", \"min_rtt\": "; json::write_int(o, s.diag.stats.min_rtt);
    o += ", \"bursts\": "; json::write_uint(o, s.diag.stats.bursts);
    o += "}}";
  }
  o += "\n  ]";
}
}  // namespace detail

/// The model as JSON (see docs/estimators.md for the schema).
template <class = void>
[[nodiscard]] inline std::string model_to_json(const estimate::model& m) {
  std::string o;
  o += "{\n  \"format\": \"tsync-model\",\n  \"version\": 1,\n  \"estimator\": ";
  json::write_string(o, m.estimator);
  o += ",\n  \"segments\": ";
  detail::write_model_pieces(o, m);
  o += "\n}\n";
  return o;
}

namespace detail {

/// Reads the fields of a parsed model document; the first error is kept with
/// the path of its field.
template <class = void>
class model_reader {
 public:
  std::optional<text_error> error{};

  bool fail(errc c, std::string path, std::string msg) {
    if (!error) error = text_error{c, 0, path, path.empty() ? msg : path + ": " + msg};
    return false;
  }
  const json::value* member(const json::value& obj, std::string_view key, json::value::kind k, const std::string& path) {
    const json::value* v = obj.find(key);
    if (v == nullptr || v->k != k) {
      fail(errc::invalid_argument, path + std::string(key), std::string("missing or of the wrong type (expected ") +
                                                              kind_name(k) + ")");
      return nullptr;
    }
    return v;
  }
  bool get_int(const json::value& obj, std::string_view key, const std::string& path, std::int64_t& out) {
    const json::value* v = member(obj, key, json::value::kind::number, path);
    if (v == nullptr) return false;
    auto i = v->as_int64();
    if (!i) return fail(errc::malformed_number, path + std::string(key), "not a 64-bit integer");
    out = *i;
    return true;
  }
  bool get_double(const json::value& obj, std::string_view key, const std::string& path, double& out) {
    const json::value* v = member(obj, key, json::value::kind::number, path);
    if (v == nullptr) return false;
    auto d = v->as_double();
    if (!d) return fail(errc::non_finite, path + std::string(key), "not a finite number");
    out = *d;
    return true;
  }
  bool get_lines(const json::value& obj, std::string_view key, const std::string& path, std::vector<estimate::line>& out) {
    const json::value* v = member(obj, key, json::value::kind::array, path);
    if (v == nullptr) return false;
    for (std::size_t i = 0; i < v->items.size(); ++i) {
      const auto& it = v->items[i];
      const std::string at = path + std::string(key) + "[" + std::to_string(i) + "]";
      if (it.k != json::value::kind::array || it.items.size() != 2)
        return fail(errc::invalid_argument, at, "a bound line must be [offset, slope_q48]");
      auto a = it.items[0].as_int64();
      auto b = it.items[1].as_int64();
      if (!a || !b) return fail(errc::malformed_number, at, "a bound line must hold two 64-bit integers");
      out.push_back({*a, *b});
    }
    return true;
  }
  bool stat(const json::value& sv, const std::string& path, estimate::segment& s) {
    const json::value* st = sv.find("stat");
    if (st == nullptr) return fail(errc::invalid_argument, path + "stat", "missing");
    if (st->k == json::value::kind::null) return true;
    if (st->k != json::value::kind::object) return fail(errc::invalid_argument, path + "stat", "must be an object or null");
    estimate::stat_band b;
    const std::string p = path + "stat.";
    if (!get_double(*st, "var_offset", p, b.var_offset) || !get_double(*st, "cov", p, b.cov) ||
        !get_double(*st, "var_slope", p, b.var_slope) || !get_double(*st, "k", p, b.k))
      return false;
    s.stat = b;
    return true;
  }
  bool diagnostics(const json::value& sv, const std::string& path, estimate::segment& s) {
    const json::value* dg = member(sv, "diagnostics", json::value::kind::object, path);
    if (dg == nullptr) return false;
    const std::string p = path + "diagnostics.";
    std::int64_t used = 0, rej = 0, mr = 0, nb = 0;
    if (!get_int(*dg, "probes_used", p, used) || !get_int(*dg, "probes_rejected", p, rej) ||
        !get_int(*dg, "min_rtt", p, mr) || !get_int(*dg, "bursts", p, nb))
      return false;
    if (used < 0 || rej < 0 || nb < 0 || nb > static_cast<std::int64_t>(std::numeric_limits<std::uint32_t>::max()))
      return fail(errc::out_of_range, p.substr(0, p.size() - 1), "negative or oversized diagnostic count");
    s.diag.stats = {static_cast<std::uint64_t>(used), static_cast<std::uint64_t>(rej), mr, static_cast<std::uint32_t>(nb)};
    return true;
  }
  bool segment(const json::value& sv, const std::string& path, estimate::segment& s) {
    if (sv.k != json::value::kind::object) return fail(errc::invalid_argument, path.substr(0, path.size() - 1), "a segment must be an object");
    if (!get_int(sv, "begin", path, s.begin) || !get_int(sv, "end", path, s.end) || !get_int(sv, "ref", path, s.ref) ||
        !get_int(sv, "offset", path, s.fit.offset) || !get_int(sv, "slope_q48", path, s.fit.slope_q48))
      return false;
    const json::value* cause = sv.find("cause");
    if (cause == nullptr || cause->k != json::value::kind::string || !estimate::cause_from_string(cause->text))
      return fail(errc::invalid_argument, path + "cause", "must name a boundary cause");
    s.diag.cause = *estimate::cause_from_string(cause->text);
    const json::value* hard = member(sv, "hard", json::value::kind::object, path);
    if (hard == nullptr || !get_lines(*hard, "lo", path + "hard.", s.lo) || !get_lines(*hard, "hi", path + "hard.", s.hi))
      return false;
    return stat(sv, path, s) && diagnostics(sv, path, s);
  }

 private:
  static const char* kind_name(json::value::kind k) {
    switch (k) {
      case json::value::kind::number: return "a number";
      case json::value::kind::string: return "a string";
      case json::value::kind::array: return "an array";
      case json::value::kind::object: return "an object";
      default: return "a value";
    }
  }
};

}  // namespace detail

namespace detail {
/// The model held by object `obj` (its `estimator` and `segments`), checked.
template <class = void>
inline expected<estimate::model, text_error> model_of(model_reader<>& r, const json::value& obj, const std::string& path) {
  estimate::model m;
  const json::value* est = r.error ? nullptr : r.member(obj, "estimator", json::value::kind::string, path);
  if (est != nullptr) m.estimator = est->text;
  const json::value* segs = r.error ? nullptr : r.member(obj, "segments", json::value::kind::array, path);
  for (std::size_t i = 0; segs != nullptr && !r.error && i < segs->items.size(); ++i) {
    estimate::segment s;
    if (r.segment(segs->items[i], path + "segments[" + std::to_string(i) + "].", s)) m.segments.push_back(std::move(s));
  }
  if (r.error) return unexpected(*r.error);
  if (auto c = m.check(); !c)
    return unexpected(text_error{c.error(), 0, path + "segments",
                                 c.error() == errc::empty_input ? "the model has no segments"
                                                                : "segments violate the model invariants"});
  return m;
}
}  // namespace detail

namespace detail {

/// Parse a model document and check its header: a JSON object whose
/// `format`, when present, is "tsync-model" and whose `version` is 1 to
/// `max_version` (left in `version`). The first error is also kept in `r`.
template <class = void>
inline expected<json::value, text_error> model_document(std::string_view text, json::parse_limits limits,
                                                        std::int64_t max_version, model_reader<>& r,
                                                        std::int64_t& version) {
  auto doc = json::parse(text, limits);
  if (!doc) return unexpected(doc.error());
  const json::value& root = *doc;
  if (root.k != json::value::kind::object) {
    r.fail(errc::invalid_argument, "", "the model must be a JSON object");
    return unexpected(*r.error);
  }
  const json::value* fmt = r.member(root, "format", json::value::kind::string, "");
  if (fmt != nullptr && fmt->text != "tsync-model") r.fail(errc::invalid_argument, "format", "must be \"tsync-model\"");
  if (!r.error && r.get_int(root, "version", "", version) && (version < 1 || version > max_version))
    r.fail(errc::unsupported_version, "version", "unsupported model version " + std::to_string(version));
  if (r.error) return unexpected(*r.error);
  return std::move(*doc);
}

}  // namespace detail

/// Read a model written by `model_to_json`. Errors (`text_error`):
/// `invalid_argument` for JSON syntax (with its line) or a missing / mistyped
/// field (`field` is its path), `oversized` above `limits`, `malformed_number`
/// for a number that is not the expected kind, `non_finite` for a statistical
/// band that is not finite, `unsupported_version`, and the errors of
/// `model::check()`.
template <class = void>
[[nodiscard]] inline expected<estimate::model, text_error> read_model_json(std::string_view text,
                                                                          json::parse_limits limits = {}) {
  detail::model_reader r;
  std::int64_t ver = 0;
  auto doc = detail::model_document(text, limits, 1, r, ver);
  if (!doc) return unexpected(doc.error());
  auto m = detail::model_of(r, *doc, "");
  if (!m) return unexpected(m.error());
  return std::move(*m);
}

}  // namespace tsync::io

namespace tsync::inline TSYNC_ABI::estimate {

template <class>
inline std::string model::to_json() const { return io::model_to_json(*this); }

template <class>
inline expected<model, errc> model::from_json(std::string_view text, text_error* error) {
  if (error) *error = {};
  auto m = io::read_model_json(text);
  if (m) return std::move(*m);
  if (error) *error = m.error();
  return unexpected(m.error().code);
}

}  // namespace tsync::estimate
