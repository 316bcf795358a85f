#pragma once
/// \file
/// The probe wire protocol, version 2: message types, their fixed layout and a
/// strict codec. Version 2 adds `hello` (clock identity and boot identity, sent
/// by both sides before any series); the other messages are laid out as in
/// version 1. A version-1 peer is recognised by the version byte of what it
/// sends (`peek_version`) and answered in its own version (`encode(m, out, 1)`).
///
/// Every message is a 12-byte header followed by a payload. All integers are
/// **little-endian**, whatever the host's byte order; signed integers are two's
/// complement. The header is
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | magic, the bytes `T` `S` `Y` `N` (`wire_magic` read as little-endian u32) |
/// | 4 | 1 | protocol version (`wire_version`, 2) |
/// | 5 | 1 | message type (`message_type`) |
/// | 6 | 2 | header flags (only `flag_last_batch`, only on `deferred`) |
/// | 8 | 4 | payload length in bytes (at most `max_payload_size`) |
///
/// Roles: the *initiator* stamps t1 (before sending a probe) and t2 (after its
/// reply arrives) with its clock; the *responder* stamps g with its clock when the
/// probe arrives. Which side is host or guest does not matter.
///
/// `decode()` checks everything a peer controls before using it: the size of the
/// input, the magic, the version, the type, the flags, the payload length (exactly
/// what the type needs), every count against its limit and every enum against its
/// known values. A bad message yields an error code, never undefined behaviour.

#include <array>
#include <optional>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <variant>
#include <vector>

#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::probe {

/// The first four bytes of every message: ASCII "TSYN".
inline constexpr std::uint32_t wire_magic = 0x4E595354u;
/// The protocol version this codec speaks.
inline constexpr std::uint8_t wire_version = 2;
/// The oldest version `encode` can still write (for an error that an older peer can read).
inline constexpr std::uint8_t oldest_wire_version = 1;
/// Size of the fixed header.
inline constexpr std::size_t header_size = 12;

/// Limits checked on every decoded message.
inline constexpr std::uint32_t max_probes_per_series = 65536;  ///< probe ids are < probe_count <= this
inline constexpr std::uint32_t max_vcpu_id = 65535;            ///< vCPU (channel) ids are <= this
inline constexpr std::uint32_t max_batch_entries = 1024;       ///< stamps per `deferred` message
inline constexpr std::size_t max_reason_length = 200;          ///< bytes of an `error` reason (printable ASCII)
inline constexpr std::size_t batch_entry_size = 12;            ///< probe id u32 + g i64
inline constexpr std::size_t max_clock_name_length = 32;       ///< bytes of a `hello` clock name (printable ASCII)
inline constexpr std::size_t hello_fixed_size = 36;            ///< `hello` payload without the clock name
/// Largest payload of any message (a full deferred batch).
inline constexpr std::size_t max_payload_size = 8 + batch_entry_size * max_batch_entries;
/// Largest encoded message.
inline constexpr std::size_t max_encoded_size = header_size + max_payload_size;

/// Message types (the byte at offset 5).
enum class message_type : std::uint8_t {
  start = 1,      ///< initiator → responder: a series begins
  start_ack = 2,  ///< responder → initiator: ready (after pinning); says how stamps are delivered
  probe = 3,      ///< initiator → responder: one probe
  reply = 4,      ///< responder → initiator: the reply, with g in immediate mode
  end = 5,        ///< initiator → responder: the series is over
  end_ack = 6,    ///< responder → initiator: series closed (after any deferred batches)
  deferred = 7,   ///< responder → initiator: a batch of (probe id, g) known only later
  result = 8,     ///< either way: the estimate computed from a series
  error = 9,      ///< either way: abort with a code and a short reason
  bye = 10,       ///< initiator → responder: the session is over
  hello = 11,     ///< both ways, before any series: who is speaking, with which clock (version 2)
};

/// Header flag: this `deferred` batch is the last of its series.
inline constexpr std::uint16_t flag_last_batch = 0x0001;

/// Flags of a `start` message (payload field).
namespace series_flag {
inline constexpr std::uint32_t pin_vcpu = 0x1;      ///< the responder should run on vCPU `vcpu`
inline constexpr std::uint32_t final_series = 0x2;  ///< the last series of a session
inline constexpr std::uint32_t all = pin_vcpu | final_series;
}  // namespace series_flag

/// How the responder delivers its stamps (payload of `start_ack`).
enum class stamp_mode : std::uint32_t {
  immediate = 0,  ///< each reply carries g
  deferred = 1,   ///< replies carry g = 0; stamps follow in `deferred` batches after `end`
};

/// `start`: a series of `probe_count` probes on `vcpu` begins.
struct start_msg {
  std::uint32_t series_id = 0;
  std::uint32_t flags = 0;  ///< `series_flag` bits
  std::uint32_t probe_count = 0;
  std::uint32_t vcpu = 0;
  friend constexpr bool operator==(const start_msg&, const start_msg&) = default;
};
/// `start_ack`: the responder is ready for the series.
struct start_ack_msg {
  std::uint32_t series_id = 0;
  stamp_mode mode = stamp_mode::immediate;
  friend constexpr bool operator==(const start_ack_msg&, const start_ack_msg&) = default;
};
/// `probe`: one probe of a series.
struct probe_msg {
  std::uint32_t series_id = 0;
  std::uint32_t probe_id = 0;
  friend constexpr bool operator==(const probe_msg&, const probe_msg&) = default;
};
/// `reply`: the responder's answer to a probe.
struct reply_msg {
  std::uint32_t series_id = 0;
  std::uint32_t probe_id = 0;
  std::int64_t g = 0;  ///< responder stamp (0 in deferred mode)
  friend constexpr bool operator==(const reply_msg&, const reply_msg&) = default;
};
/// `end`: the initiator sent `probes_sent` probes and expects no more replies.
struct end_msg {
  std::uint32_t series_id = 0;
  std::uint32_t probes_sent = 0;
  friend constexpr bool operator==(const end_msg&, const end_msg&) = default;
};
/// `end_ack`: the responder received `probes_received` distinct probes of the series.
struct end_ack_msg {
  std::uint32_t series_id = 0;
  std::uint32_t probes_received = 0;
  friend constexpr bool operator==(const end_ack_msg&, const end_ack_msg&) = default;
};
/// One responder stamp delivered late.
struct stamp_entry {
  std::uint32_t probe_id = 0;
  std::int64_t g = 0;
  friend constexpr bool operator==(const stamp_entry&, const stamp_entry&) = default;
};
/// `deferred`: up to `max_batch_entries` stamps; `last` marks the final batch.
struct deferred_msg {
  std::uint32_t series_id = 0;
  bool last = false;
  std::vector<stamp_entry> entries;
  friend bool operator==(const deferred_msg&, const deferred_msg&) = default;
};
/// `result`: an estimate computed from a series (absolute offset, responder − initiator,
/// with its hard interval `[lo, hi]`).
struct result_msg {
  std::uint32_t series_id = 0;
  std::uint32_t estimator = 0;  ///< estimator id chosen by the application (0 = unspecified)
  std::int64_t offset = 0;
  std::int64_t lo = 0;
  std::int64_t hi = 0;
  std::int64_t min_rtt = 0;  ///< >= 0
  std::uint32_t probes_used = 0;
  std::uint32_t probes_rejected = 0;
  friend constexpr bool operator==(const result_msg&, const result_msg&) = default;
};
/// `error`: the sender aborts `series_id` (0 when none) with a tsync error code and a reason.
struct error_msg {
  std::uint32_t series_id = 0;
  std::uint32_t code = 0;  ///< a `tsync::errc` value
  std::string reason;      ///< printable ASCII, at most `max_reason_length` bytes
  friend bool operator==(const error_msg&, const error_msg&) = default;
};
/// `bye`: the initiator ends the session.
struct bye_msg {
  friend constexpr bool operator==(const bye_msg&, const bye_msg&) = default;
};

/// The unit of a clock's readings as the protocol carries it.
enum class time_unit : std::uint8_t {
  ns = 0,      ///< nanoseconds
  cycles = 1,  ///< counter cycles (the TSC); `peer_identity::tsc_hz` gives their rate when known
};
/// "ns" or "cycles".
[[nodiscard]] constexpr const char* to_string(time_unit u) noexcept { return u == time_unit::cycles ? "cycles" : "ns"; }

/// Who is speaking: the clock it stamps with and the boot it runs in.
struct peer_identity {
  std::string clock;                 ///< clock name (`mono_raw`, `x86-tsc`, ...), printable, <= `max_clock_name_length`
  time_unit unit = time_unit::ns;    ///< unit of its stamps
  std::uint64_t tsc_hz = 0;          ///< cycles per second when `unit` is cycles (0: unknown); 0 for ns
  std::array<std::uint8_t, 16> boot_id{};  ///< the machine's boot id (/proc/sys/kernel/random/boot_id); zero: unknown
  std::uint64_t nonce = 0;           ///< random per process: a restarted agent has another
  friend bool operator==(const peer_identity&, const peer_identity&) = default;
};

/// Role byte of a `hello`.
enum class hello_role : std::uint8_t { initiator = 0, responder = 1 };

/// `hello`: the sender's identity. The initiator sends it before the first
/// series (tsync sends it before every series, so a restarted responder is
/// noticed); the responder answers with its own.
struct hello_msg {
  hello_role role = hello_role::initiator;
  peer_identity id;
  friend bool operator==(const hello_msg&, const hello_msg&) = default;
};

/// Any message (the variant index + 1 is the type byte).
using message = std::variant<start_msg, start_ack_msg, probe_msg, reply_msg, end_msg, end_ack_msg, deferred_msg,
                             result_msg, error_msg, bye_msg, hello_msg>;

/// The type byte of a message.
[[nodiscard]] inline message_type type_of(const message& m) noexcept {
  return static_cast<message_type>(m.index() + 1);
}

/// A short name of a message type ("start", "reply", ...; "unknown" otherwise).
[[nodiscard]] constexpr const char* to_string(message_type t) noexcept {
  switch (t) {
    case message_type::start: return "start";
    case message_type::start_ack: return "start_ack";
    case message_type::probe: return "probe";
    case message_type::reply: return "reply";
    case message_type::end: return "end";
    case message_type::end_ack: return "end_ack";
    case message_type::deferred: return "deferred";
    case message_type::result: return "result";
    case message_type::error: return "error";
    case message_type::bye: return "bye";
    case message_type::hello: return "hello";
  }
  return "unknown";
}

namespace detail {

inline void put_u16(std::byte* p, std::uint16_t v) noexcept {
  p[0] = static_cast<std::byte>(v & 0xFFu);
  p[1] = static_cast<std::byte>(v >> 8);
}
inline void put_u32(std::byte* p, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xFFu);
}
inline void put_u64(std::byte* p, std::uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xFFu);
}
inline void put_i64(std::byte* p, std::int64_t v) noexcept { put_u64(p, static_cast<std::uint64_t>(v)); }
[[nodiscard]] inline std::uint16_t get_u16(const std::byte* p) noexcept {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) | (std::to_integer<unsigned>(p[1]) << 8));
}
[[nodiscard]] inline std::uint32_t get_u32(const std::byte* p) noexcept {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::to_integer<std::uint32_t>(p[i]) << (8 * i);
  return v;
}
[[nodiscard]] inline std::uint64_t get_u64(const std::byte* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= std::to_integer<std::uint64_t>(p[i]) << (8 * i);
  return v;
}
[[nodiscard]] inline std::int64_t get_i64(const std::byte* p) noexcept {
  return static_cast<std::int64_t>(get_u64(p));  // two's complement (C++20)
}

[[nodiscard]] inline bool printable(std::string_view s) noexcept {
  for (char c : s) {
    if (c < 0x20 || c > 0x7E) return false;
  }
  return true;
}

/// Payload size of a message (no validation).
[[nodiscard]] inline std::size_t payload_size(const message& m) noexcept {
  struct visitor {
    std::size_t operator()(const start_msg&) const noexcept { return 16; }
    std::size_t operator()(const start_ack_msg&) const noexcept { return 8; }
    std::size_t operator()(const probe_msg&) const noexcept { return 8; }
    std::size_t operator()(const reply_msg&) const noexcept { return 16; }
    std::size_t operator()(const end_msg&) const noexcept { return 8; }
    std::size_t operator()(const end_ack_msg&) const noexcept { return 8; }
    std::size_t operator()(const deferred_msg& d) const noexcept { return 8 + batch_entry_size * d.entries.size(); }
    std::size_t operator()(const result_msg&) const noexcept { return 48; }
    std::size_t operator()(const error_msg& e) const noexcept { return 12 + e.reason.size(); }
    std::size_t operator()(const bye_msg&) const noexcept { return 0; }
    std::size_t operator()(const hello_msg& h) const noexcept { return hello_fixed_size + h.id.clock.size(); }
  };
  return std::visit(visitor{}, m);
}

/// The field checks shared by `encode` and `decode`. Returns success for a
/// message within every limit; errors: `errc::oversized`, `errc::out_of_range` or
/// `errc::protocol_error` as listed at `decode`.
[[nodiscard]] inline expected<void, std::error_code> check_fields(const message& m) noexcept {
  const auto bad = [](errc e) noexcept { return unexpected(make_error_code(e)); };
  if (const auto* s = std::get_if<start_msg>(&m)) {
    if (s->probe_count == 0 || s->probe_count > max_probes_per_series) return bad(errc::oversized);
    if (s->vcpu > max_vcpu_id) return bad(errc::out_of_range);
    if ((s->flags & ~series_flag::all) != 0) return bad(errc::protocol_error);
  } else if (const auto* a = std::get_if<start_ack_msg>(&m)) {
    if (a->mode != stamp_mode::immediate && a->mode != stamp_mode::deferred) return bad(errc::protocol_error);
  } else if (const auto* p = std::get_if<probe_msg>(&m)) {
    if (p->probe_id >= max_probes_per_series) return bad(errc::out_of_range);
  } else if (const auto* r = std::get_if<reply_msg>(&m)) {
    if (r->probe_id >= max_probes_per_series) return bad(errc::out_of_range);
  } else if (const auto* e = std::get_if<end_msg>(&m)) {
    if (e->probes_sent > max_probes_per_series) return bad(errc::oversized);
  } else if (const auto* k = std::get_if<end_ack_msg>(&m)) {
    if (k->probes_received > max_probes_per_series) return bad(errc::oversized);
  } else if (const auto* d = std::get_if<deferred_msg>(&m)) {
    if (d->entries.size() > max_batch_entries) return bad(errc::oversized);
    for (const auto& en : d->entries) {
      if (en.probe_id >= max_probes_per_series) return bad(errc::out_of_range);
    }
  } else if (const auto* res = std::get_if<result_msg>(&m)) {
    if (res->lo > res->hi || res->min_rtt < 0) return bad(errc::protocol_error);
    if (res->probes_used > max_probes_per_series || res->probes_rejected > max_probes_per_series ||
        res->probes_used + res->probes_rejected > max_probes_per_series)
      return bad(errc::oversized);
  } else if (const auto* er = std::get_if<error_msg>(&m)) {
    if (er->reason.size() > max_reason_length) return bad(errc::oversized);
    if (!printable(er->reason)) return bad(errc::protocol_error);
  } else if (const auto* he = std::get_if<hello_msg>(&m)) {
    if (he->id.clock.size() > max_clock_name_length) return bad(errc::oversized);
    if (!printable(he->id.clock)) return bad(errc::protocol_error);
    if (he->role != hello_role::initiator && he->role != hello_role::responder) return bad(errc::protocol_error);
    if (he->id.unit != time_unit::ns && he->id.unit != time_unit::cycles) return bad(errc::protocol_error);
    if (he->id.unit == time_unit::ns && he->id.tsc_hz != 0) return bad(errc::protocol_error);
  }
  return {};
}

}  // namespace detail

/// Size in bytes of the encoded form of `m` (header included).
[[nodiscard]] inline std::size_t encoded_size(const message& m) noexcept {
  return header_size + detail::payload_size(m);
}

namespace detail {

/// Writes the payload of each message type at `p`.
struct payload_writer {
  std::byte* p;
  void operator()(const start_msg& s) const noexcept {
    detail::put_u32(p, s.series_id);
    detail::put_u32(p + 4, s.flags);
    detail::put_u32(p + 8, s.probe_count);
    detail::put_u32(p + 12, s.vcpu);
  }
  void operator()(const start_ack_msg& a) const noexcept {
    detail::put_u32(p, a.series_id);
    detail::put_u32(p + 4, static_cast<std::uint32_t>(a.mode));
  }
  void operator()(const probe_msg& q) const noexcept {
    detail::put_u32(p, q.series_id);
    detail::put_u32(p + 4, q.probe_id);
  }
  void operator()(const reply_msg& r) const noexcept {
    detail::put_u32(p, r.series_id);
    detail::put_u32(p + 4, r.probe_id);
    detail::put_i64(p + 8, r.g);
  }
  void operator()(const end_msg& e) const noexcept {
    detail::put_u32(p, e.series_id);
    detail::put_u32(p + 4, e.probes_sent);
  }
  void operator()(const end_ack_msg& e) const noexcept {
    detail::put_u32(p, e.series_id);
    detail::put_u32(p + 4, e.probes_received);
  }
  void operator()(const deferred_msg& d) const noexcept {
    detail::put_u32(p, d.series_id);
    detail::put_u32(p + 4, static_cast<std::uint32_t>(d.entries.size()));
    std::byte* q = p + 8;
    for (const auto& en : d.entries) {
      detail::put_u32(q, en.probe_id);
      detail::put_i64(q + 4, en.g);
      q += batch_entry_size;
    }
  }
  void operator()(const result_msg& r) const noexcept {
    detail::put_u32(p, r.series_id);
    detail::put_u32(p + 4, r.estimator);
    detail::put_i64(p + 8, r.offset);
    detail::put_i64(p + 16, r.lo);
    detail::put_i64(p + 24, r.hi);
    detail::put_i64(p + 32, r.min_rtt);
    detail::put_u32(p + 40, r.probes_used);
    detail::put_u32(p + 44, r.probes_rejected);
  }
  void operator()(const error_msg& e) const noexcept {
    detail::put_u32(p, e.series_id);
    detail::put_u32(p + 4, e.code);
    detail::put_u32(p + 8, static_cast<std::uint32_t>(e.reason.size()));
    for (std::size_t i = 0; i < e.reason.size(); ++i) p[12 + i] = static_cast<std::byte>(e.reason[i]);
  }
  void operator()(const bye_msg&) const noexcept {}
  void operator()(const hello_msg& he) const noexcept {
    p[0] = static_cast<std::byte>(static_cast<std::uint8_t>(he.role));
    p[1] = static_cast<std::byte>(static_cast<std::uint8_t>(he.id.unit));
    p[2] = static_cast<std::byte>(he.id.clock.size());
    p[3] = std::byte{0};
    detail::put_u64(p + 4, he.id.tsc_hz);
    for (std::size_t i = 0; i < 16; ++i) p[12 + i] = static_cast<std::byte>(he.id.boot_id[i]);
    detail::put_u64(p + 28, he.id.nonce);
    for (std::size_t i = 0; i < he.id.clock.size(); ++i) p[hello_fixed_size + i] = static_cast<std::byte>(he.id.clock[i]);
  }
};

}  // namespace detail

/// Encode `m` into `out`; returns the number of bytes written.
///
/// `version` is `wire_version` except to answer an older peer in its own
/// version: `oldest_wire_version`..`wire_version`, and version 1 has no `hello`.
///
/// Errors: `errc::truncated` if `out` is too small; the same field checks as
/// `decode()` (`oversized`, `out_of_range`, `protocol_error`), so that a tsync
/// peer never sends what a tsync peer would reject; `unsupported_version` for a
/// version outside that range or a message the version lacks.
[[nodiscard]] inline expected<std::size_t, std::error_code> encode(const message& m, std::span<std::byte> out,
                                                                   std::uint8_t version = wire_version) noexcept {
  if (version < oldest_wire_version || version > wire_version ||
      (version == 1 && type_of(m) == message_type::hello))
    return unexpected(make_error_code(errc::unsupported_version));
  if (auto f = detail::check_fields(m); !f) return unexpected(f.error());
  const std::size_t payload = detail::payload_size(m);
  if (payload > max_payload_size) return unexpected(make_error_code(errc::oversized));
  const std::size_t total = header_size + payload;
  if (out.size() < total) return unexpected(make_error_code(errc::truncated));
  std::byte* h = out.data();
  detail::put_u32(h, wire_magic);
  h[4] = static_cast<std::byte>(version);
  h[5] = static_cast<std::byte>(static_cast<std::uint8_t>(type_of(m)));
  std::uint16_t flags = 0;
  if (const auto* d = std::get_if<deferred_msg>(&m); d != nullptr && d->last) flags = flag_last_batch;
  detail::put_u16(h + 6, flags);
  detail::put_u32(h + 8, static_cast<std::uint32_t>(payload));
  std::visit(detail::payload_writer{h + header_size}, m);
  return total;
}

/// Encode `m` into a new vector (empty on error, which `encode()` would report).
[[nodiscard]] inline expected<std::vector<std::byte>, std::error_code> encode_to_vector(const message& m) {
  std::vector<std::byte> out(encoded_size(m));
  auto n = encode(m, out);
  if (!n) return unexpected(n.error());
  return out;
}

namespace detail {

/// A checked header: the message type, its flags and its payload.
struct wire_header {
  message_type type = message_type::bye;
  std::uint16_t flags = 0;
  std::span<const std::byte> payload;
};

/// The header checks of `decode` (magic, version, length, type, flags).
[[nodiscard]] inline expected<wire_header, errc> decode_header(std::span<const std::byte> in) noexcept {
  if (in.size() < header_size) return unexpected(errc::truncated);
  const std::byte* h = in.data();
  if (get_u32(h) != wire_magic) return unexpected(errc::protocol_error);
  if (std::to_integer<std::uint8_t>(h[4]) != wire_version) return unexpected(errc::unsupported_version);
  const auto type = std::to_integer<std::uint8_t>(h[5]);
  const std::uint16_t flags = get_u16(h + 6);
  const std::uint32_t len = get_u32(h + 8);
  if (len > max_payload_size) return unexpected(errc::oversized);
  if (in.size() - header_size < len) return unexpected(errc::truncated);
  if (in.size() - header_size > len) return unexpected(errc::protocol_error);
  if (type < 1 || type > static_cast<std::uint8_t>(message_type::hello)) return unexpected(errc::protocol_error);
  const auto mt = static_cast<message_type>(type);
  const std::uint16_t allowed = mt == message_type::deferred ? flag_last_batch : std::uint16_t{0};
  if ((flags & ~allowed) != 0) return unexpected(errc::protocol_error);
  return wire_header{mt, flags, in.subspan(header_size, len)};
}

[[nodiscard]] inline expected<message, errc> decode_deferred(std::span<const std::byte> pl, std::uint16_t flags) {
  const std::size_t len = pl.size();
  if (len < 8) return unexpected(errc::protocol_error);
  const std::byte* p = pl.data();
  const std::uint32_t count = get_u32(p + 4);
  if (count > max_batch_entries) return unexpected(errc::oversized);
  if (len != 8 + batch_entry_size * count) return unexpected(errc::protocol_error);
  deferred_msg d;
  d.series_id = get_u32(p);
  d.last = (flags & flag_last_batch) != 0;
  d.entries.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::byte* q = p + 8 + batch_entry_size * i;
    d.entries.push_back(stamp_entry{get_u32(q), get_i64(q + 4)});
  }
  return message(std::move(d));
}

[[nodiscard]] inline expected<message, errc> decode_hello(std::span<const std::byte> pl) {
  if (pl.size() < hello_fixed_size) return unexpected(errc::protocol_error);
  const std::byte* p = pl.data();
  const auto name_len = std::to_integer<std::size_t>(p[2]);
  if (name_len > max_clock_name_length) return unexpected(errc::oversized);
  if (pl.size() != hello_fixed_size + name_len || p[3] != std::byte{0}) return unexpected(errc::protocol_error);
  const auto role = std::to_integer<std::uint8_t>(p[0]), unit = std::to_integer<std::uint8_t>(p[1]);
  if (role > 1 || unit > 1) return unexpected(errc::protocol_error);
  hello_msg h;
  h.role = static_cast<hello_role>(role);
  h.id.unit = static_cast<time_unit>(unit);
  h.id.tsc_hz = get_u64(p + 4);
  for (std::size_t i = 0; i < 16; ++i) h.id.boot_id[i] = std::to_integer<std::uint8_t>(p[12 + i]);
  h.id.nonce = get_u64(p + 28);
  h.id.clock.resize(name_len);
  for (std::size_t i = 0; i < name_len; ++i) h.id.clock[i] = static_cast<char>(std::to_integer<unsigned char>(p[hello_fixed_size + i]));
  return message(std::move(h));
}

[[nodiscard]] inline expected<message, errc> decode_error(std::span<const std::byte> pl) {
  const std::size_t len = pl.size();
  if (len < 12) return unexpected(errc::protocol_error);
  const std::byte* p = pl.data();
  const std::uint32_t rlen = get_u32(p + 8);
  if (rlen > max_reason_length) return unexpected(errc::oversized);
  if (len != 12 + rlen) return unexpected(errc::protocol_error);
  error_msg e;
  e.series_id = get_u32(p);
  e.code = get_u32(p + 4);
  e.reason.resize(rlen);
  for (std::uint32_t i = 0; i < rlen; ++i) e.reason[i] = static_cast<char>(std::to_integer<unsigned char>(p[12 + i]));
  return message(std::move(e));
}

/// The fixed-size payloads: the size each type needs, then its fields.
[[nodiscard]] inline expected<message, errc> decode_fixed(message_type mt, std::span<const std::byte> pl) {
  static constexpr std::size_t sizes[] = {0, 16, 8, 8, 16, 8, 8, 0, 48, 0, 0};  // by message_type value
  const auto t = static_cast<std::size_t>(mt);
  if (t < std::size(sizes) && pl.size() != sizes[t]) return unexpected(errc::protocol_error);
  const std::byte* p = pl.data();
  switch (mt) {
    case message_type::start: return message(start_msg{get_u32(p), get_u32(p + 4), get_u32(p + 8), get_u32(p + 12)});
    case message_type::start_ack: {
      const std::uint32_t mode = get_u32(p + 4);
      if (mode > 1) return unexpected(errc::protocol_error);
      return message(start_ack_msg{get_u32(p), static_cast<stamp_mode>(mode)});
    }
    case message_type::probe: return message(probe_msg{get_u32(p), get_u32(p + 4)});
    case message_type::reply: return message(reply_msg{get_u32(p), get_u32(p + 4), get_i64(p + 8)});
    case message_type::end: return message(end_msg{get_u32(p), get_u32(p + 4)});
    case message_type::end_ack: return message(end_ack_msg{get_u32(p), get_u32(p + 4)});
    case message_type::result:
      return message(result_msg{get_u32(p), get_u32(p + 4), get_i64(p + 8), get_i64(p + 16), get_i64(p + 24),
                                get_i64(p + 32), get_u32(p + 40), get_u32(p + 44)});
    case message_type::bye: return message(bye_msg{});
    default: return unexpected(errc::protocol_error);
  }
}

}  // namespace detail

/// Decode exactly one message that fills all of `in`.
///
/// Errors (`tsync::errc` as `std::error_code`):
/// - `truncated`: fewer bytes than the header, or than the header's payload length;
/// - `protocol_error`: bad magic, unknown type, unknown flag bits, a payload length
///   that does not match the type, trailing bytes, an unknown enum value, a
///   non-printable reason, `lo > hi` or a negative `min_rtt` in a result;
/// - `unsupported_version`: a version other than `wire_version`;
/// - `oversized`: a payload length above `max_payload_size`, or a count above its
///   limit (probe count, batch entries, reason length);
/// - `out_of_range`: a probe id >= `max_probes_per_series` or a vCPU id above `max_vcpu_id`.
///
/// A message of another version fails with `unsupported_version`; `peek_version`
/// then says which version the peer speaks.
[[nodiscard]] inline expected<message, std::error_code> decode(std::span<const std::byte> in) {
  auto h = detail::decode_header(in);
  if (!h) return unexpected(make_error_code(h.error()));
  auto m = h->type == message_type::deferred ? detail::decode_deferred(h->payload, h->flags)
           : h->type == message_type::error  ? detail::decode_error(h->payload)
           : h->type == message_type::hello  ? detail::decode_hello(h->payload)
                                             : detail::decode_fixed(h->type, h->payload);
  if (!m) return unexpected(make_error_code(m.error()));
  if (auto f = detail::check_fields(*m); !f) return unexpected(f.error());
  return std::move(*m);
}

/// The version byte of a message that starts with the magic (whatever its
/// version); empty for fewer than 5 bytes or another magic. Used to name the
/// version of a peer whose message `decode` refused with `unsupported_version`.
[[nodiscard]] inline std::optional<std::uint8_t> peek_version(std::span<const std::byte> in) noexcept {
  if (in.size() < 5 || detail::get_u32(in.data()) != wire_magic) return std::nullopt;
  return std::to_integer<std::uint8_t>(in[4]);
}

/// "peer is older (protocol 1): ..." / "peer is newer (protocol 3): ..." for a
/// peer speaking `version`, from the side `self` ("agent", "sync").
[[nodiscard]] inline std::string version_mismatch_text(std::uint8_t version, std::string_view self) {
  const bool older = version < wire_version;
  std::string s = std::string("peer is ") + (older ? "older" : "newer") + " (protocol " + std::to_string(version) +
                  "); this " + std::string(self) + " speaks protocol " + std::to_string(wire_version) +
                  ": run the same tsync version on both sides";
  return s;
}

}  // namespace tsync::probe
