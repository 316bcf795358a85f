#pragma once
/// \file
/// The probe exchange over one transport: `run_series()` is the initiator's state
/// machine (stamps t1 and t2), `serve()` the responder's (stamps g). Both work over
/// any `tsync::transport::message_transport` and any `tsync::clock::clock_source`.
///
/// One series, as seen on the wire (tsync's initiator sends `hello` before
/// every series, `exchange_hello`; the responder answers with its identity):
///
/// ```
/// initiator                         responder
///   hello(initiator identity)    ─▶  on_hello (may refuse: clock mismatch)
///                                ◀─ hello(responder identity)
///   start(series, flags, N, vcpu) ─▶  on_series_start (e.g. pin to the vCPU)
///                                ◀─ start_ack(series, stamp mode)
///   t1; probe(series, 0)         ─▶  g = now()
///   t2                           ◀─ reply(series, 0, g)          (g = 0 in deferred mode)
///   ... N probes, one in flight at a time ...
///   end(series, N)               ─▶
///                                ◀─ deferred(series, [(id, g)...]) ... last   (deferred mode only)
///                                ◀─ end_ack(series, received)
///   result(series, estimate)     ─▶  on_result (optional, sent by the application)
///   bye                          ─▶  serve() returns
/// ```
///
/// Robustness rules (the peer is not trusted):
/// - replies are matched by series id *and* probe id; replies of another series,
///   repeated, late (after their probe timed out) or for probes never sent are
///   counted in `series_stats` and dropped;
/// - a count from the peer above what was sent (`end_ack.probes_received`, deferred
///   stamps) is a protocol error;
/// - a message that does not decode ends the series with the decoder's error, and
///   the peer is told with an `error` message;
/// - a peer that is silent for `max_consecutive_lost` probe timeouts, or past the
///   series deadline, ends the series with `errc::timed_out`;
/// - whatever ends a series early, the samples collected until then are kept.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include "tsync/clock/clock_source.hpp"
#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/sync_sample.hpp"
#include "tsync/probe/identity.hpp"
#include "tsync/probe/message.hpp"
#include "tsync/transport/transport.hpp"
#include "tsync/core/config.hpp"

namespace tsync::inline TSYNC_ABI::probe {

/// Parameters of one series on the initiator side.
struct series_config {
  std::uint32_t series_id = 0;  ///< chosen by the caller; replies of other series are dropped
  std::uint32_t vcpu = 0;       ///< vCPU (channel) the series is for, <= `max_vcpu_id`
  std::uint32_t probes = 339;   ///< probes in the series, 1..`max_probes_per_series`
  std::uint32_t flags = 0;      ///< `series_flag` bits sent in `start`
  std::chrono::nanoseconds per_probe_timeout = std::chrono::milliseconds(100);  ///< a reply later than this is lost
  std::chrono::nanoseconds end_timeout = std::chrono::seconds(1);  ///< wait for end_ack (and deferred stamps)
  transport::deadline deadline = transport::deadline::max();      ///< the whole series ends by then
  std::uint32_t max_consecutive_lost = 16;  ///< this many lost probes in a row: the peer is stalled
  std::uint32_t handshake_retries = 3;      ///< re-sends of `start` / `end` when their answer is lost
};

/// What happened to the messages of a series (initiator side).
struct series_stats {
  std::uint32_t sent = 0;             ///< probes sent
  std::uint32_t replies = 0;          ///< probes answered in time (matched)
  std::uint32_t lost = 0;             ///< probes without a reply before their timeout
  std::uint32_t late = 0;             ///< replies that came after their probe timed out (dropped)
  std::uint32_t duplicates = 0;       ///< replies / stamps received twice (dropped)
  std::uint32_t stale = 0;            ///< messages of another series (dropped)
  std::uint32_t out_of_range = 0;     ///< replies / stamps for probes never sent (dropped)
  std::uint32_t unexpected = 0;       ///< messages the responder should not send (dropped)
  std::uint32_t deferred_stamps = 0;  ///< deferred stamps used
  std::uint32_t unresolved = 0;       ///< answered probes without a stamp, or stamps without a reply
  std::uint32_t peer_received = 0;    ///< distinct probes the responder says it received
  friend constexpr bool operator==(const series_stats&, const series_stats&) = default;
};

/// The outcome of `run_series`.
struct series_result {
  std::vector<probe_sample> probes;  ///< samples collected, in probe-id order (kept when `error` is set)
  std::error_code error;             ///< set when the series ended early or incomplete
  series_stats stats;
  stamp_mode mode = stamp_mode::immediate;  ///< how the responder delivered its stamps
  std::string peer_reason;                  ///< reason text of an `error` message from the peer
  [[nodiscard]] bool ok() const noexcept { return !error; }
};

/// Options of the responder.
struct responder_options {
  stamp_mode mode = stamp_mode::immediate;
  /// Called when a series starts, before `start_ack` (e.g. pin this thread to
  /// `s.vcpu`). A non-zero error refuses the series: the initiator gets an `error`.
  std::function<std::error_code(const start_msg& s)> on_series_start;
  /// Called when a probe is accepted, right after g was taken (e.g. write a trace marker).
  std::function<void(const probe_msg& p)> on_probe;
  /// Deferred mode: called at `end` with the stamps taken from the clock; may
  /// replace them with the real ones (e.g. read back from the trace). Entries with
  /// ids outside the series are dropped afterwards. An error aborts the series.
  std::function<std::error_code(const start_msg& s, std::vector<stamp_entry>& stamps)> resolve_deferred;
  /// Called for each `result` the initiator sends.
  std::function<void(const result_msg& r)> on_result;
  /// This side's identity, sent in answer to a `hello`.
  peer_identity identity;
  /// Called with the initiator's identity when its `hello` arrives; a reason
  /// refuses the session (e.g. a clock mismatch): the answer `hello` is still
  /// sent (so the initiator can name both clocks), then an `error` with the
  /// reason, and every later `start` is refused until a `hello` is accepted.
  std::function<std::optional<std::string>(const peer_identity& initiator)> on_hello;
  /// Refuse a `start` before an accepted `hello` on this connection (tsync's agent does).
  bool require_hello = false;
  /// Called when the peer speaks another protocol version; it is answered with
  /// an `error` in its own version (when we can write it) and serving ends with
  /// `errc::unsupported_version`.
  std::function<void(std::uint8_t version)> on_version_mismatch;
  std::chrono::nanoseconds poll_interval = std::chrono::milliseconds(50);  ///< how often `stop` is checked
  std::chrono::nanoseconds idle_timeout = std::chrono::nanoseconds::zero(); ///< > 0: no message for this long is an error
  std::chrono::nanoseconds send_timeout = std::chrono::seconds(1);          ///< bound of each send
  std::uint32_t max_series = 0;  ///< > 0: return after this many completed series
};

/// Why `serve()` returned normally.
enum class serve_end { bye, peer_closed, stopped, deadline, max_series };

/// What the responder did.
struct serve_stats {
  std::uint32_t series_started = 0;
  std::uint32_t series_completed = 0;
  std::uint32_t series_abandoned = 0;   ///< replaced by a new start, or aborted by the initiator
  std::uint32_t series_refused = 0;     ///< `on_series_start` said no
  std::uint64_t probes_answered = 0;
  std::uint64_t duplicate_probes = 0;   ///< dropped
  std::uint64_t out_of_range_probes = 0; ///< dropped
  std::uint64_t stale_messages = 0;     ///< for no active series (dropped)
  std::uint64_t unexpected_messages = 0; ///< responder-role messages from the initiator (dropped)
  std::uint32_t results_received = 0;
  std::uint32_t errors_received = 0;
  std::uint32_t hellos = 0;             ///< `hello`s answered
  std::uint32_t hellos_refused = 0;     ///< of which `on_hello` refused
  serve_end ended = serve_end::bye;
};

namespace detail {

[[nodiscard]] inline transport::deadline earliest(transport::deadline d, std::chrono::nanoseconds from_now) noexcept {
  const auto now = std::chrono::steady_clock::now();
  if (d <= now) return d;
  if (d - now <= from_now) return d;
  return now + from_now;
}

[[nodiscard]] inline bool is(const std::error_code& ec, errc e) noexcept { return ec == make_error_code(e); }

/// An `error` message's code as a local error: a tsync code when it looks like one.
[[nodiscard]] inline std::error_code peer_error(std::uint32_t code) noexcept {
  if (code == 0 || code > 255) return make_error_code(errc::protocol_error);
  return make_error_code(static_cast<errc>(code));
}

/// Encode `m` into `scratch` and send it before `d`. Returns success once sent;
/// errors: those of `encode` (a message that breaks a field limit) and of `t.send`.
template <transport::message_transport T>
[[nodiscard]] expected<void, std::error_code> send_message(T& t, const message& m, std::vector<std::byte>& scratch,
                                                           transport::deadline d) {
  scratch.resize(encoded_size(m));
  auto n = encode(m, scratch);
  if (!n) return unexpected(n.error());
  return t.send(std::span<const std::byte>(scratch.data(), *n), d);
}

/// Best-effort `error` message to the peer (its own failure is ignored).
template <transport::message_transport T>
void send_abort(T& t, std::uint32_t series, const std::error_code& ec, std::string_view why,
                std::vector<std::byte>& scratch, transport::deadline d) {
  error_msg e;
  e.series_id = series;
  e.code = ec.category() == error_category() ? static_cast<std::uint32_t>(ec.value())
                                             : static_cast<std::uint32_t>(errc::io_error);
  std::string reason(why);
  if (reason.size() > max_reason_length) reason.resize(max_reason_length);
  for (char& c : reason) {
    if (c < 0x20 || c > 0x7E) c = '?';
  }
  e.reason = std::move(reason);
  (void)send_message(t, message{std::move(e)}, scratch, d);
}

}  // namespace detail

/// The initiator's state machine for one series, in three parts that can be
/// driven (and tested) one by one: `start()` (the `start`/`start_ack`
/// handshake), `step()` (one probe and its reply), `finish()` (the `end`
/// handshake and deferred stamps). `run_series` chains them.
template <transport::message_transport T, clock::clock_source C>
class initiator_series {
 public:
  initiator_series(T& t, C& clock, const series_config& cfg) : t_(t), clock_(clock), cfg_(cfg) {
    in_.reserve(max_encoded_size);
    out_.reserve(max_encoded_size);
  }

  /// Validate the configuration and run the start handshake (re-sent up to
  /// `handshake_retries` times). False when the series ended (see `result()`).
  [[nodiscard]] bool start() {
    if (cfg_.probes == 0 || cfg_.probes > max_probes_per_series || cfg_.vcpu > max_vcpu_id ||
        (cfg_.flags & ~series_flag::all) != 0 || cfg_.per_probe_timeout <= std::chrono::nanoseconds::zero()) {
      res_.error = make_error_code(errc::invalid_argument);
      return false;
    }
    pend_.assign(cfg_.probes, pending{});
    const message start = start_msg{cfg_.series_id, cfg_.flags, cfg_.probes, cfg_.vcpu};
    for (std::uint32_t attempt = 0; attempt <= cfg_.handshake_retries; ++attempt) {
      if (expired()) break;
      if (auto r = detail::send_message(t_, start, out_, cfg_.deadline); !r) return fail(r.error());
      auto acked = await_start_ack(detail::earliest(cfg_.deadline, cfg_.per_probe_timeout));
      if (res_.error) return false;
      if (acked) {
        started_ = true;
        return true;
      }
    }
    abort_peer(make_error_code(errc::timed_out), "no start_ack");
    return fail(make_error_code(errc::timed_out));
  }

  /// Send the next probe and wait for its reply (or its timeout). False when
  /// there is no next probe: all were sent, or the series ended (`failed()`).
  [[nodiscard]] bool step() {
    if (!started_ || res_.error || next_ >= cfg_.probes) return false;
    if (expired()) return fail(make_error_code(errc::timed_out));
    const std::uint32_t id = next_++;
    const std::int64_t t1 = clock_.now_raw();
    if (auto r = detail::send_message(t_, message{probe_msg{cfg_.series_id, id}}, out_, cfg_.deadline); !r)
      return fail(r.error());
    ++res_.stats.sent;
    pend_[id].t1 = t1;
    await_reply(id, detail::earliest(cfg_.deadline, cfg_.per_probe_timeout));
    return !res_.error && next_ < cfg_.probes;
  }

  /// The end handshake: `end`, the deferred stamps (deferred mode) and `end_ack`.
  void finish() {
    if (!started_ || res_.error) return;
    bool acked = false;
    const message end = end_msg{cfg_.series_id, res_.stats.sent};
    for (std::uint32_t attempt = 0; attempt <= cfg_.handshake_retries && !acked && !res_.error; ++attempt) {
      if (expired()) break;
      if (auto r = detail::send_message(t_, end, out_, cfg_.deadline); !r) {
        res_.error = r.error();
        break;
      }
      acked = await_end_ack(attempt, detail::earliest(cfg_.deadline, cfg_.end_timeout));
    }
    if (!acked && !res_.error) res_.error = make_error_code(errc::timed_out);
    if (deferred()) {
      for (const auto& p : pend_) {
        if (p.answered && p.stamped) ++res_.stats.deferred_stamps;
        if (p.answered != p.stamped) ++res_.stats.unresolved;
      }
    }
  }

  [[nodiscard]] bool failed() const noexcept { return static_cast<bool>(res_.error); }

  /// The outcome so far, with the samples collected (probe-id order).
  [[nodiscard]] series_result result() {
    res_.probes.clear();
    for (std::uint32_t i = 0; i < pend_.size(); ++i) {
      const auto& p = pend_[i];
      if (p.answered && p.stamped) res_.probes.push_back(probe_sample{p.t1, p.g, p.t2, i, cfg_.series_id, cfg_.vcpu});
    }
    return res_;
  }

 private:
  struct pending {
    std::int64_t t1 = 0;
    std::int64_t t2 = 0;
    std::int64_t g = 0;
    bool answered = false;
    bool stamped = false;
  };

  [[nodiscard]] bool expired() const { return std::chrono::steady_clock::now() >= cfg_.deadline; }
  [[nodiscard]] bool deferred() const noexcept { return res_.mode == stamp_mode::deferred; }
  bool fail(const std::error_code& ec) {
    res_.error = ec;
    return false;
  }
  void abort_peer(const std::error_code& ec, std::string_view why) {
    detail::send_abort(t_, cfg_.series_id, ec, why, out_, detail::earliest(cfg_.deadline, cfg_.per_probe_timeout));
  }

  /// Receive and decode one message before `until`; empty on a timeout or an
  /// error (then `res_.error` is set, and a malformed message is reported to the peer).
  std::optional<message> receive(transport::deadline until, bool timeout_is_error) {
    auto r = t_.receive(in_, until);
    if (!r) {
      if (!detail::is(r.error(), errc::timed_out) || timeout_is_error) res_.error = r.error();
      return std::nullopt;
    }
    auto m = decode(in_);
    if (!m) {
      abort_peer(m.error(), "malformed message");
      res_.error = m.error();
      return std::nullopt;
    }
    return std::move(*m);
  }

  /// True once the `start_ack` of this series came; false on a timeout or an error.
  bool await_start_ack(transport::deadline until) {
    for (;;) {
      auto m = receive(until, false);
      if (!m) return false;
      if (const auto* a = std::get_if<start_ack_msg>(&*m); a != nullptr && a->series_id == cfg_.series_id) {
        res_.mode = a->mode;
        return true;
      }
      if (auto ec = other(*m)) return fail(ec);
    }
  }

  /// Wait for the reply to probe `id`; a timeout counts it lost (and may end the series).
  void await_reply(std::uint32_t id, transport::deadline until) {
    for (;;) {
      auto r = t_.receive(in_, until);
      const std::int64_t t2 = clock_.now_raw();
      if (!r) {
        if (!detail::is(r.error(), errc::timed_out)) {
          res_.error = r.error();
        } else {
          ++res_.stats.lost;
          if (expired() || ++consecutive_lost_ >= cfg_.max_consecutive_lost) {
            res_.error = make_error_code(errc::timed_out);
            abort_peer(res_.error, "responder stalled");
          }
        }
        return;
      }
      auto m = decode(in_);
      if (!m) {
        abort_peer(m.error(), "malformed message");
        res_.error = m.error();
        return;
      }
      if (const auto* rep = std::get_if<reply_msg>(&*m);
          rep != nullptr && rep->series_id == cfg_.series_id && rep->probe_id == id) {
        auto& p = pend_[id];
        p.t2 = t2;
        p.answered = true;
        if (!deferred()) {
          p.g = rep->g;
          p.stamped = true;
        }
        ++res_.stats.replies;
        consecutive_lost_ = 0;
        return;
      }
      if (auto ec = other(*m)) {
        res_.error = ec;
        return;
      }
    }
  }

  /// Deferred stamps of this series: false (and the error set) when they count more than was sent.
  bool take_stamps(const deferred_msg& d, std::uint32_t attempt) {
    auto& st = res_.stats;
    stamps_seen_ += d.entries.size();
    // Each `end` (re)sent may be answered by the full set once: more is a lie.
    if (d.entries.size() > st.sent || stamps_seen_ > static_cast<std::uint64_t>(st.sent) * (attempt + 1)) {
      res_.error = make_error_code(errc::protocol_error);
      abort_peer(res_.error, "more stamps than probes sent");
      return false;
    }
    for (const auto& e : d.entries) {
      if (e.probe_id >= st.sent) {
        ++st.out_of_range;
      } else if (pend_[e.probe_id].stamped) {
        ++st.duplicates;
      } else {
        pend_[e.probe_id].g = e.g;
        pend_[e.probe_id].stamped = true;
      }
    }
    if (d.last) last_batch_ = true;
    return true;
  }

  /// One round of waiting for `end_ack` (and deferred stamps): true once acknowledged.
  bool await_end_ack(std::uint32_t attempt, transport::deadline until) {
    if (!deferred()) last_batch_ = true;
    for (;;) {
      auto m = receive(until, false);
      if (!m) return false;
      if (const auto* d = std::get_if<deferred_msg>(&*m); d != nullptr && d->series_id == cfg_.series_id && deferred()) {
        if (!take_stamps(*d, attempt)) return false;
        continue;
      }
      if (const auto* k = std::get_if<end_ack_msg>(&*m); k != nullptr && k->series_id == cfg_.series_id) {
        if (k->probes_received > res_.stats.sent) {
          res_.error = make_error_code(errc::protocol_error);
          abort_peer(res_.error, "end_ack counts more probes than were sent");
          return false;
        }
        res_.stats.peer_received = k->probes_received;
        return last_batch_;  // without the last batch: ask again
      }
      if (auto ec = other(*m)) return fail(ec);
    }
  }

  /// A message that is not the one awaited: count it, or end the series.
  std::error_code other(const message& m) {
    auto& st = res_.stats;
    const std::uint32_t sid = cfg_.series_id;
    if (const auto* e = std::get_if<error_msg>(&m)) {
      if (e->series_id == sid || e->series_id == 0) {
        res_.peer_reason = e->reason;
        return detail::peer_error(e->code);
      }
      ++st.stale;
    } else if (const auto* r = std::get_if<reply_msg>(&m)) {
      if (r->series_id != sid) ++st.stale;
      else if (r->probe_id >= st.sent) ++st.out_of_range;
      else if (pend_[r->probe_id].answered) ++st.duplicates;
      else ++st.late;
    } else if (const auto* a = std::get_if<start_ack_msg>(&m)) {
      if (a->series_id == sid) ++st.duplicates; else ++st.stale;
    } else if (const auto* k = std::get_if<end_ack_msg>(&m)) {
      if (k->series_id == sid) ++st.duplicates; else ++st.stale;
    } else if (const auto* d = std::get_if<deferred_msg>(&m)) {
      if (d->series_id == sid) ++st.unexpected; else ++st.stale;
    } else {
      ++st.unexpected;
    }
    return {};
  }

  T& t_;
  C& clock_;
  series_config cfg_;
  series_result res_;
  std::vector<pending> pend_;
  std::vector<std::byte> in_, out_;
  std::uint32_t next_ = 0;
  std::uint32_t consecutive_lost_ = 0;
  std::uint64_t stamps_seen_ = 0;
  bool started_ = false;
  bool last_batch_ = false;
};

/// Run one series of `cfg.probes` probes as the initiator.
///
/// `clock` stamps t1 just before each probe is sent and t2 just after its reply
/// is received. Returns the samples (probe id order) and, when the series did not
/// complete, an error: `errc::invalid_argument` (bad config), `errc::timed_out`
/// (no `start_ack`/`end_ack` after the retries, the peer stalled, or the deadline
/// passed), `errc::peer_closed`, a decoder error (`protocol_error`, `truncated`,
/// `oversized`, `unsupported_version`, `out_of_range`), `errc::protocol_error` for
/// counts above what was sent, the code of a peer's `error` message, or a transport error.
template <transport::message_transport T, clock::clock_source C>
[[nodiscard]] series_result run_series(T& t, C& clock, const series_config& cfg) {
  initiator_series<T, C> s(t, clock, cfg);
  if (!s.start()) return s.result();
  while (s.step()) {
  }
  if (!s.failed()) s.finish();
  return s.result();
}

/// Send a `result` (e.g. the estimate of a series) to the peer.
template <transport::message_transport T>
[[nodiscard]] expected<void, std::error_code> send_result(T& t, const result_msg& r, transport::deadline d) {
  std::vector<std::byte> scratch;
  return detail::send_message(t, message{r}, scratch, d);
}

/// Tell the responder that the session is over (`serve()` then returns `serve_end::bye`).
template <transport::message_transport T>
[[nodiscard]] expected<void, std::error_code> send_bye(T& t, transport::deadline d) {
  std::vector<std::byte> scratch;
  return detail::send_message(t, message{bye_msg{}}, scratch, d);
}

/// What `exchange_hello` learned.
struct hello_result {
  std::optional<peer_identity> peer;         ///< the responder's identity (also when it refused us)
  std::error_code error;                     ///< set when the handshake did not succeed
  std::uint8_t peer_version = wire_version;  ///< the version the peer spoke (another one: `unsupported_version`)
  std::string message;                       ///< the peer's reason, or what went wrong, for a person
  [[nodiscard]] bool ok() const noexcept { return !error; }
};

namespace detail {
/// One message of the handshake; false when it ends it (result filled).
[[nodiscard]] inline bool hello_answer(const expected<message, std::error_code>& m, std::span<const std::byte> raw,
                                       hello_result& res) {
  if (!m) {
    res.error = m.error();
    if (is(m.error(), errc::unsupported_version)) {
      res.peer_version = peek_version(raw).value_or(0);
      res.message = version_mismatch_text(res.peer_version, "sync");
    } else {
      res.message = "malformed answer to hello: " + m.error().message();
    }
    return false;
  }
  if (const auto* h = std::get_if<hello_msg>(&*m); h != nullptr && h->role == hello_role::responder) {
    res.peer = h->id;
    return false;
  }
  if (const auto* e = std::get_if<error_msg>(&*m); e != nullptr && e->series_id == 0) {
    res.error = peer_error(e->code);
    res.message = e->reason;
    return false;
  }
  return true;  // a late message of an earlier series: ignore
}
}  // namespace detail

/// The initiator's handshake: send `hello` with `mine` and wait until
/// `until` for the responder's `hello` (re-sent every `resend`, for a responder
/// that was not reading yet, e.g. a virtio-serial port the guest opens late).
/// Late messages of earlier series are skipped. Errors: `errc::timed_out` (no
/// answer: "connected but nobody answers"), `unsupported_version` (the peer
/// speaks another version: `peer_version`, `message`), the code of the peer's
/// `error` (`message` is its reason), a decoder or transport error.
template <transport::message_transport T>
[[nodiscard]] hello_result exchange_hello(T& t, const peer_identity& mine, transport::deadline until,
                                          std::chrono::nanoseconds resend = std::chrono::seconds(1)) {
  hello_result res;
  std::vector<std::byte> out, in;
  in.reserve(max_encoded_size);
  const message hello = hello_msg{hello_role::initiator, mine};
  while (std::chrono::steady_clock::now() < until) {
    if (auto sent = detail::send_message(t, hello, out, until); !sent) {
      res.error = sent.error();
      res.message = "cannot send hello: " + sent.error().message();
      return res;
    }
    const auto round_end = detail::earliest(until, resend);
    for (;;) {
      auto r = t.receive(in, round_end);
      if (!r) {
        if (detail::is(r.error(), errc::timed_out)) break;
        res.error = r.error();
        res.message = "no answer to hello: " + r.error().message();
        return res;
      }
      // A responder that refuses us (clock mismatch) answers with its hello, then an
      // error; the caller compares the identities itself (`clock_mismatch`).
      if (!detail::hello_answer(decode(in), in, res)) return res;
    }
  }
  res.error = make_error_code(errc::timed_out);
  res.message = "connected, but nobody answered the hello (is the agent running on the other side?)";
  return res;
}

/// The responder's state machine, one message at a time: `step()` receives (up
/// to the poll interval) and answers one message; it returns the end of serving
/// (normal or an error) once there is one. `serve` loops over it.
template <transport::message_transport T, clock::clock_source C>
class responder {
 public:
  using outcome = expected<serve_stats, std::error_code>;

  responder(T& t, C& clock, const responder_options& opt, transport::deadline until = transport::deadline::max(),
            std::stop_token stop = {})
      : t_(t), clock_(clock), opt_(opt), until_(until), stop_(std::move(stop)),
        poll_(opt.poll_interval > std::chrono::nanoseconds::zero() ? opt.poll_interval
                                                                    : std::chrono::milliseconds(50)) {
    in_.reserve(max_encoded_size);
    out_.reserve(max_encoded_size);
  }

  /// Handle at most one message; the outcome once serving is over.
  [[nodiscard]] std::optional<outcome> step() {
    if (stop_.stop_requested()) return ended(serve_end::stopped);
    const auto now = std::chrono::steady_clock::now();
    if (now >= until_) return ended(serve_end::deadline);
    if (opt_.idle_timeout > std::chrono::nanoseconds::zero() && now - last_activity_ >= opt_.idle_timeout)
      return outcome(unexpected(make_error_code(errc::timed_out)));
    auto r = t_.receive(in_, detail::earliest(until_, poll_));
    const std::int64_t g = clock_.now_raw();
    if (!r) {
      if (detail::is(r.error(), errc::timed_out)) return std::nullopt;
      if (detail::is(r.error(), errc::peer_closed) && !active_) return ended(serve_end::peer_closed);
      return outcome(unexpected(r.error()));
    }
    last_activity_ = std::chrono::steady_clock::now();
    auto m = decode(in_);
    if (!m) {
      if (detail::is(m.error(), errc::unsupported_version)) return other_version();
      abort_peer(active_ ? cur_.series_id : 0, m.error(), "malformed message");
      return outcome(unexpected(m.error()));
    }
    return handle(*m, g);
  }

  /// Whether a series is in progress.
  [[nodiscard]] bool active() const noexcept { return active_; }
  [[nodiscard]] const serve_stats& stats() const noexcept { return st_; }

 private:
  std::optional<outcome> handle(const message& m, std::int64_t g) {
    switch (type_of(m)) {
      case message_type::start: return on_start(std::get<start_msg>(m));
      case message_type::probe: return on_probe(std::get<probe_msg>(m), g);
      case message_type::end: return on_end(std::get<end_msg>(m));
      case message_type::result:
        ++st_.results_received;
        if (opt_.on_result) opt_.on_result(std::get<result_msg>(m));
        return std::nullopt;
      case message_type::error: {
        ++st_.errors_received;
        const auto& e = std::get<error_msg>(m);
        if (active_ && (e.series_id == cur_.series_id || e.series_id == 0)) {
          active_ = false;
          ++st_.series_abandoned;
        }
        return std::nullopt;
      }
      case message_type::bye: return ended(serve_end::bye);
      case message_type::hello: return on_hello(std::get<hello_msg>(m));
      case message_type::start_ack:
      case message_type::reply:
      case message_type::end_ack:
      case message_type::deferred: ++st_.unexpected_messages; return std::nullopt;
    }
    return std::nullopt;
  }

  /// A peer of another protocol version: tell it in its own version (version 1
  /// reads an `error` as we write it) and end.
  outcome other_version() {
    const auto v = peek_version(in_).value_or(0);
    if (opt_.on_version_mismatch) opt_.on_version_mismatch(v);
    const auto ec = make_error_code(errc::unsupported_version);
    error_msg e;
    e.code = static_cast<std::uint32_t>(errc::unsupported_version);
    e.reason = version_mismatch_text(v, "agent").substr(0, max_reason_length);
    const std::uint8_t as = v >= oldest_wire_version && v < wire_version ? v : wire_version;
    out_.resize(encoded_size(message{e}));
    if (auto n = encode(message{std::move(e)}, out_, as))
      (void)t_.send(std::span<const std::byte>(out_.data(), *n), detail::earliest(until_, opt_.send_timeout));
    return unexpected(ec);
  }

  std::optional<outcome> on_hello(const hello_msg& h) {
    if (h.role != hello_role::initiator) {
      ++st_.unexpected_messages;
      return std::nullopt;
    }
    if (active_) {
      active_ = false;
      ++st_.series_abandoned;
    }
    ++st_.hellos;
    if (auto r = send(message{hello_msg{hello_role::responder, opt_.identity}}); !r) return send_failed(r.error());
    refusal_.clear();
    if (opt_.on_hello) {
      if (auto why = opt_.on_hello(h.id)) refusal_ = why->empty() ? std::string("session refused") : *why;
    }
    hello_ok_ = refusal_.empty();
    if (!hello_ok_) {
      ++st_.hellos_refused;
      abort_peer(0, make_error_code(errc::unsupported), refusal_);
    }
    return std::nullopt;
  }

  std::optional<outcome> on_start(const start_msg& s) {
    if ((opt_.require_hello || !refusal_.empty()) && !hello_ok_) {
      ++st_.series_refused;
      abort_peer(s.series_id, make_error_code(errc::protocol_error),
                 refusal_.empty() ? std::string("a hello is needed before start (protocol 2)") : refusal_);
      return std::nullopt;
    }
    if (active_ && s.series_id == cur_.series_id && received_ == 0)
      return sent(send(message{start_ack_msg{s.series_id, opt_.mode}}));  // a repeated start whose ack was lost
    if (active_) ++st_.series_abandoned;
    active_ = false;
    if (opt_.on_series_start) {
      if (auto ec = opt_.on_series_start(s)) {
        ++st_.series_refused;
        abort_peer(s.series_id, ec, "series refused: " + ec.message());
        return std::nullopt;
      }
    }
    active_ = true;
    cur_ = s;
    seen_.assign(s.probe_count, 0);
    received_ = 0;
    stamps_.clear();
    ++st_.series_started;
    return sent(send(message{start_ack_msg{s.series_id, opt_.mode}}));
  }

  std::optional<outcome> on_probe(const probe_msg& p, std::int64_t g) {
    if (!active_ || p.series_id != cur_.series_id) {
      ++st_.stale_messages;
      return std::nullopt;
    }
    if (p.probe_id >= cur_.probe_count) {
      ++st_.out_of_range_probes;
      return std::nullopt;
    }
    if (seen_[p.probe_id] != 0) {
      ++st_.duplicate_probes;
      return std::nullopt;
    }
    seen_[p.probe_id] = 1;
    ++received_;
    if (opt_.on_probe) opt_.on_probe(p);
    std::int64_t stamp = g;
    if (opt_.mode == stamp_mode::deferred) {
      stamps_.push_back(stamp_entry{p.probe_id, g});
      stamp = 0;
    }
    if (auto r = send(message{reply_msg{p.series_id, p.probe_id, stamp}}); !r) return send_failed(r.error());
    ++st_.probes_answered;
    return std::nullopt;
  }

  std::optional<outcome> on_end(const end_msg& e) {
    if (!active_ || e.series_id != cur_.series_id) {
      if (!active_ && have_last_ && e.series_id == last_id_) return sent(send_end_answer());
      ++st_.stale_messages;
      return std::nullopt;
    }
    if (e.probes_sent > cur_.probe_count) {
      const auto ec = make_error_code(errc::protocol_error);
      abort_peer(e.series_id, ec, "end counts more probes than start announced");
      return outcome(unexpected(ec));
    }
    if (opt_.mode == stamp_mode::deferred && opt_.resolve_deferred) {
      if (auto ec = opt_.resolve_deferred(cur_, stamps_)) {
        abort_peer(e.series_id, ec, "deferred stamps unavailable: " + ec.message());
        active_ = false;
        ++st_.series_abandoned;
        return std::nullopt;
      }
      const std::uint32_t limit = e.probes_sent;
      std::erase_if(stamps_, [&](const stamp_entry& x) { return x.probe_id >= limit; });
      if (stamps_.size() > limit) stamps_.resize(limit);
    }
    active_ = false;
    have_last_ = true;
    last_id_ = e.series_id;
    last_received_ = received_;
    last_stamps_ = std::move(stamps_);
    stamps_.clear();
    ++st_.series_completed;
    if (auto r = send_end_answer(); !r) return send_failed(r.error());
    if (opt_.max_series > 0 && st_.series_completed >= opt_.max_series) return ended(serve_end::max_series);
    return std::nullopt;
  }

  /// The answer to `end` of the last completed series: deferred stamps (in
  /// batches) and `end_ack`; also re-sent for a repeated `end` whose answer was lost.
  expected<void, std::error_code> send_end_answer() {
    if (opt_.mode == stamp_mode::deferred) {
      const auto& s = last_stamps_;
      std::size_t i = 0;
      do {
        deferred_msg d;
        d.series_id = last_id_;
        const std::size_t k = std::min<std::size_t>(max_batch_entries, s.size() - i);
        d.entries.assign(s.begin() + static_cast<std::ptrdiff_t>(i), s.begin() + static_cast<std::ptrdiff_t>(i + k));
        i += k;
        d.last = i >= s.size();
        if (auto r = send(message{std::move(d)}); !r) return r;
      } while (i < s.size());
    }
    return send(message{end_ack_msg{last_id_, last_received_}});
  }

  expected<void, std::error_code> send(const message& m) {
    return detail::send_message(t_, m, out_, detail::earliest(until_, opt_.send_timeout));
  }
  void abort_peer(std::uint32_t series, const std::error_code& ec, std::string_view why) {
    detail::send_abort(t_, series, ec, why, out_, detail::earliest(until_, opt_.send_timeout));
  }
  std::optional<outcome> sent(const expected<void, std::error_code>& r) {
    if (r) return std::nullopt;
    return send_failed(r.error());
  }
  /// A failed send: the peer is gone (fine between series) or the transport broke.
  outcome send_failed(const std::error_code& ec) {
    if (detail::is(ec, errc::peer_closed) && !active_) return ended(serve_end::peer_closed);
    return unexpected(ec);
  }
  outcome ended(serve_end why) {
    st_.ended = why;
    return st_;
  }

  T& t_;
  C& clock_;
  const responder_options& opt_;
  transport::deadline until_;
  std::stop_token stop_;
  std::chrono::nanoseconds poll_;
  serve_stats st_{};
  std::vector<std::byte> in_, out_;
  bool active_ = false;
  start_msg cur_{};
  std::vector<std::uint8_t> seen_;
  std::uint32_t received_ = 0;
  std::vector<stamp_entry> stamps_;
  // The last completed series, to answer a repeated `end` whose answer was lost.
  bool have_last_ = false;
  std::uint32_t last_id_ = 0;
  std::uint32_t last_received_ = 0;
  std::vector<stamp_entry> last_stamps_;
  std::chrono::steady_clock::time_point last_activity_ = std::chrono::steady_clock::now();
  bool hello_ok_ = false;   // a `hello` was accepted on this connection
  std::string refusal_;     // why the last `hello` was refused
};

/// Answer probes as the responder until `bye`, the peer closing between series,
/// `stop` being requested, the deadline `until`, or `opt.max_series` completed series.
///
/// `clock` stamps g right after each message is received. Returns the statistics;
/// an error when the peer vanished in the middle of a series (`errc::peer_closed`),
/// sent a message that does not decode (the decoder's error; the peer is told),
/// announced more probes than its `start` did (`errc::protocol_error`), stayed silent
/// longer than `opt.idle_timeout` (`errc::timed_out`), or the transport failed.
template <transport::message_transport T, clock::clock_source C>
[[nodiscard]] expected<serve_stats, std::error_code> serve(T& t, C& clock, const responder_options& opt,
                                                           transport::deadline until = transport::deadline::max(),
                                                           std::stop_token stop = {}) {
  responder<T, C> r(t, clock, opt, until, std::move(stop));
  for (;;) {
    if (auto done = r.step()) return std::move(*done);
  }
}

}  // namespace tsync::probe
