#pragma once
/// \file
/// The probe exchange over one transport: `run_series()` is the initiator's state
/// machine (stamps t1 and t2), `serve()` the responder's (stamps g). Both work over
/// any `tsync::transport::message_transport` and any `tsync::clock::clock_source`.
///
/// One series, as seen on the wire:
///
/// ```
/// initiator                         responder
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

template <transport::message_transport T>
std::error_code send_message(T& t, const message& m, std::vector<std::byte>& scratch, transport::deadline d) {
  scratch.resize(encoded_size(m));
  auto n = encode(m, scratch);
  if (!n) return n.error();
  auto r = t.send(std::span<const std::byte>(scratch.data(), *n), d);
  if (!r) return r.error();
  return {};
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
  series_result res;
  if (cfg.probes == 0 || cfg.probes > max_probes_per_series || cfg.vcpu > max_vcpu_id ||
      (cfg.flags & ~series_flag::all) != 0 || cfg.per_probe_timeout <= std::chrono::nanoseconds::zero()) {
    res.error = make_error_code(errc::invalid_argument);
    return res;
  }
  const std::uint32_t sid = cfg.series_id;
  const std::uint32_t n = cfg.probes;
  std::vector<std::byte> in;
  std::vector<std::byte> out;
  in.reserve(max_encoded_size);
  out.reserve(max_encoded_size);
  auto& st = res.stats;

  struct pending {
    std::int64_t t1 = 0;
    std::int64_t t2 = 0;
    std::int64_t g = 0;
    bool answered = false;
    bool stamped = false;
  };
  std::vector<pending> pend(n);

  const auto abort_peer = [&](const std::error_code& ec, std::string_view why) {
    detail::send_abort(t, sid, ec, why, out, detail::earliest(cfg.deadline, cfg.per_probe_timeout));
  };
  // A message that is not the one awaited: count it, or end the series.
  const auto other = [&](const message& m) -> std::error_code {
    if (const auto* e = std::get_if<error_msg>(&m)) {
      if (e->series_id == sid || e->series_id == 0) {
        res.peer_reason = e->reason;
        return detail::peer_error(e->code);
      }
      ++st.stale;
    } else if (const auto* r = std::get_if<reply_msg>(&m)) {
      if (r->series_id != sid) {
        ++st.stale;
      } else if (r->probe_id >= st.sent) {
        ++st.out_of_range;
      } else if (pend[r->probe_id].answered) {
        ++st.duplicates;
      } else {
        ++st.late;
      }
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
  };
  const auto collect = [&] {
    res.probes.clear();
    for (std::uint32_t i = 0; i < n; ++i) {
      const auto& p = pend[i];
      if (p.answered && p.stamped) res.probes.push_back(probe_sample{p.t1, p.g, p.t2, i, sid, cfg.vcpu});
    }
  };
  const auto expired = [&] { return std::chrono::steady_clock::now() >= cfg.deadline; };

  // ---- start ----
  {
    bool acked = false;
    const message start = start_msg{sid, cfg.flags, n, cfg.vcpu};
    for (std::uint32_t attempt = 0; attempt <= cfg.handshake_retries && !acked; ++attempt) {
      if (expired()) break;
      if (auto ec = detail::send_message(t, start, out, cfg.deadline)) {
        res.error = ec;
        return res;
      }
      const auto until = detail::earliest(cfg.deadline, cfg.per_probe_timeout);
      for (;;) {
        auto r = t.receive(in, until);
        if (!r) {
          if (detail::is(r.error(), errc::timed_out)) break;
          res.error = r.error();
          return res;
        }
        auto m = decode(in);
        if (!m) {
          abort_peer(m.error(), "malformed message");
          res.error = m.error();
          return res;
        }
        if (const auto* a = std::get_if<start_ack_msg>(&*m); a != nullptr && a->series_id == sid) {
          res.mode = a->mode;
          acked = true;
          break;
        }
        if (auto ec = other(*m)) {
          res.error = ec;
          return res;
        }
      }
    }
    if (!acked) {
      abort_peer(make_error_code(errc::timed_out), "no start_ack");
      res.error = make_error_code(errc::timed_out);
      return res;
    }
  }
  const bool deferred = res.mode == stamp_mode::deferred;

  // ---- probes ----
  std::uint32_t consecutive_lost = 0;
  for (std::uint32_t id = 0; id < n && !res.error; ++id) {
    if (expired()) {
      res.error = make_error_code(errc::timed_out);
      break;
    }
    const std::int64_t t1 = clock.now_raw();
    if (auto ec = detail::send_message(t, message{probe_msg{sid, id}}, out, cfg.deadline)) {
      res.error = ec;
      break;
    }
    ++st.sent;
    pend[id].t1 = t1;
    const auto until = detail::earliest(cfg.deadline, cfg.per_probe_timeout);
    for (;;) {
      auto r = t.receive(in, until);
      const std::int64_t t2 = clock.now_raw();
      if (!r) {
        if (detail::is(r.error(), errc::timed_out)) {
          ++st.lost;
          ++consecutive_lost;
          if (expired() || consecutive_lost >= cfg.max_consecutive_lost) {
            res.error = make_error_code(errc::timed_out);
            abort_peer(res.error, "responder stalled");
          }
        } else {
          res.error = r.error();
        }
        break;
      }
      auto m = decode(in);
      if (!m) {
        abort_peer(m.error(), "malformed message");
        res.error = m.error();
        break;
      }
      if (const auto* rep = std::get_if<reply_msg>(&*m);
          rep != nullptr && rep->series_id == sid && rep->probe_id == id) {
        auto& p = pend[id];
        p.t2 = t2;
        p.answered = true;
        if (!deferred) {
          p.g = rep->g;
          p.stamped = true;
        }
        ++st.replies;
        consecutive_lost = 0;
        break;
      }
      if (auto ec = other(*m)) {
        res.error = ec;
        break;
      }
    }
  }
  if (res.error) {
    collect();
    return res;
  }

  // ---- end (and deferred stamps) ----
  bool acked = false;
  bool last_batch = !deferred;
  std::uint64_t stamps_seen = 0;
  const message end = end_msg{sid, st.sent};
  for (std::uint32_t attempt = 0; attempt <= cfg.handshake_retries && !acked && !res.error; ++attempt) {
    if (expired()) break;
    if (auto ec = detail::send_message(t, end, out, cfg.deadline)) {
      res.error = ec;
      break;
    }
    const auto until = detail::earliest(cfg.deadline, cfg.end_timeout);
    for (;;) {
      auto r = t.receive(in, until);
      if (!r) {
        if (!detail::is(r.error(), errc::timed_out)) res.error = r.error();
        break;
      }
      auto m = decode(in);
      if (!m) {
        abort_peer(m.error(), "malformed message");
        res.error = m.error();
        break;
      }
      if (const auto* d = std::get_if<deferred_msg>(&*m); d != nullptr && d->series_id == sid && deferred) {
        stamps_seen += d->entries.size();
        // Each `end` (re)sent may be answered by the full set once: more is a lie.
        if (d->entries.size() > st.sent || stamps_seen > static_cast<std::uint64_t>(st.sent) * (attempt + 1)) {
          res.error = make_error_code(errc::protocol_error);
          abort_peer(res.error, "more stamps than probes sent");
          break;
        }
        for (const auto& e : d->entries) {
          if (e.probe_id >= st.sent) {
            ++st.out_of_range;
          } else if (pend[e.probe_id].stamped) {
            ++st.duplicates;
          } else {
            pend[e.probe_id].g = e.g;
            pend[e.probe_id].stamped = true;
          }
        }
        if (d->last) last_batch = true;
        continue;
      }
      if (const auto* k = std::get_if<end_ack_msg>(&*m); k != nullptr && k->series_id == sid) {
        if (k->probes_received > st.sent) {
          res.error = make_error_code(errc::protocol_error);
          abort_peer(res.error, "end_ack counts more probes than were sent");
          break;
        }
        st.peer_received = k->probes_received;
        if (last_batch) acked = true;
        break;  // without the last batch: ask again
      }
      if (auto ec = other(*m)) {
        res.error = ec;
        break;
      }
    }
  }
  if (!acked && !res.error) res.error = make_error_code(errc::timed_out);
  if (deferred) {
    for (std::uint32_t i = 0; i < n; ++i) {
      const auto& p = pend[i];
      if (p.answered && p.stamped) ++st.deferred_stamps;
      if (p.answered != p.stamped) ++st.unresolved;
    }
  }
  collect();
  return res;
}

/// Send a `result` (e.g. the estimate of a series) to the peer.
template <transport::message_transport T>
[[nodiscard]] expected<void, std::error_code> send_result(T& t, const result_msg& r, transport::deadline d) {
  std::vector<std::byte> scratch;
  if (auto ec = detail::send_message(t, message{r}, scratch, d)) return unexpected(ec);
  return {};
}

/// Tell the responder that the session is over (`serve()` then returns `serve_end::bye`).
template <transport::message_transport T>
[[nodiscard]] expected<void, std::error_code> send_bye(T& t, transport::deadline d) {
  std::vector<std::byte> scratch;
  if (auto ec = detail::send_message(t, message{bye_msg{}}, scratch, d)) return unexpected(ec);
  return {};
}

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
  serve_stats st;
  std::vector<std::byte> in;
  std::vector<std::byte> out;
  in.reserve(max_encoded_size);
  out.reserve(max_encoded_size);
  bool active = false;
  start_msg cur{};
  std::vector<std::uint8_t> seen;
  std::uint32_t received = 0;
  std::vector<stamp_entry> stamps;
  // The last completed series, to answer a repeated `end` whose answer was lost.
  bool have_last = false;
  std::uint32_t last_id = 0;
  std::uint32_t last_received = 0;
  std::vector<stamp_entry> last_stamps;
  auto last_activity = std::chrono::steady_clock::now();
  const auto poll = opt.poll_interval > std::chrono::nanoseconds::zero() ? opt.poll_interval
                                                                          : std::chrono::milliseconds(50);

  const auto send = [&](const message& m) { return detail::send_message(t, m, out, detail::earliest(until, opt.send_timeout)); };
  const auto send_end_answer = [&](std::uint32_t id, std::uint32_t count,
                                   const std::vector<stamp_entry>& s) -> std::error_code {
    if (opt.mode == stamp_mode::deferred) {
      std::size_t i = 0;
      do {
        deferred_msg d;
        d.series_id = id;
        const std::size_t k = std::min<std::size_t>(max_batch_entries, s.size() - i);
        d.entries.assign(s.begin() + static_cast<std::ptrdiff_t>(i), s.begin() + static_cast<std::ptrdiff_t>(i + k));
        i += k;
        d.last = i >= s.size();
        if (auto ec = send(message{std::move(d)})) return ec;
      } while (i < s.size());
    }
    return send(message{end_ack_msg{id, count}});
  };
  // A failed send: the peer is gone (fine between series) or the transport broke.
  const auto send_failed = [&](const std::error_code& ec) -> expected<serve_stats, std::error_code> {
    if (detail::is(ec, errc::peer_closed) && !active) {
      st.ended = serve_end::peer_closed;
      return st;
    }
    return unexpected(ec);
  };

  for (;;) {
    if (stop.stop_requested()) {
      st.ended = serve_end::stopped;
      return st;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) {
      st.ended = serve_end::deadline;
      return st;
    }
    if (opt.idle_timeout > std::chrono::nanoseconds::zero() && now - last_activity >= opt.idle_timeout) {
      return unexpected(make_error_code(errc::timed_out));
    }
    auto r = t.receive(in, detail::earliest(until, poll));
    const std::int64_t g = clock.now_raw();
    if (!r) {
      if (detail::is(r.error(), errc::timed_out)) continue;
      if (detail::is(r.error(), errc::peer_closed) && !active) {
        st.ended = serve_end::peer_closed;
        return st;
      }
      return unexpected(r.error());
    }
    last_activity = std::chrono::steady_clock::now();
    auto m = decode(in);
    if (!m) {
      detail::send_abort(t, active ? cur.series_id : 0, m.error(), "malformed message", out,
                         detail::earliest(until, opt.send_timeout));
      return unexpected(m.error());
    }
    switch (type_of(*m)) {
      case message_type::start: {
        const auto& s = std::get<start_msg>(*m);
        if (active && s.series_id == cur.series_id && received == 0) {
          if (auto ec = send(message{start_ack_msg{s.series_id, opt.mode}})) return send_failed(ec);
          break;  // a repeated start whose ack was lost
        }
        if (active) ++st.series_abandoned;
        active = false;
        if (opt.on_series_start) {
          if (auto ec = opt.on_series_start(s)) {
            ++st.series_refused;
            detail::send_abort(t, s.series_id, ec, "series refused: " + ec.message(), out,
                               detail::earliest(until, opt.send_timeout));
            break;
          }
        }
        active = true;
        cur = s;
        seen.assign(s.probe_count, 0);
        received = 0;
        stamps.clear();
        ++st.series_started;
        if (auto ec = send(message{start_ack_msg{s.series_id, opt.mode}})) return send_failed(ec);
        break;
      }
      case message_type::probe: {
        const auto& p = std::get<probe_msg>(*m);
        if (!active || p.series_id != cur.series_id) {
          ++st.stale_messages;
          break;
        }
        if (p.probe_id >= cur.probe_count) {
          ++st.out_of_range_probes;
          break;
        }
        if (seen[p.probe_id] != 0) {
          ++st.duplicate_probes;
          break;
        }
        seen[p.probe_id] = 1;
        ++received;
        if (opt.on_probe) opt.on_probe(p);
        std::int64_t stamp = g;
        if (opt.mode == stamp_mode::deferred) {
          stamps.push_back(stamp_entry{p.probe_id, g});
          stamp = 0;
        }
        if (auto ec = send(message{reply_msg{p.series_id, p.probe_id, stamp}})) return send_failed(ec);
        ++st.probes_answered;
        break;
      }
      case message_type::end: {
        const auto& e = std::get<end_msg>(*m);
        if (active && e.series_id == cur.series_id) {
          if (e.probes_sent > cur.probe_count) {
            const auto ec = make_error_code(errc::protocol_error);
            detail::send_abort(t, e.series_id, ec, "end counts more probes than start announced", out,
                               detail::earliest(until, opt.send_timeout));
            return unexpected(ec);
          }
          if (opt.mode == stamp_mode::deferred && opt.resolve_deferred) {
            if (auto ec = opt.resolve_deferred(cur, stamps)) {
              detail::send_abort(t, e.series_id, ec, "deferred stamps unavailable: " + ec.message(), out,
                                 detail::earliest(until, opt.send_timeout));
              active = false;
              ++st.series_abandoned;
              break;
            }
            const std::uint32_t limit = e.probes_sent;
            std::erase_if(stamps, [&](const stamp_entry& x) { return x.probe_id >= limit; });
            if (stamps.size() > limit) stamps.resize(limit);
          }
          active = false;
          have_last = true;
          last_id = e.series_id;
          last_received = received;
          last_stamps = std::move(stamps);
          stamps.clear();
          ++st.series_completed;
          if (auto ec = send_end_answer(last_id, last_received, last_stamps)) return send_failed(ec);
          if (opt.max_series > 0 && st.series_completed >= opt.max_series) {
            st.ended = serve_end::max_series;
            return st;
          }
        } else if (!active && have_last && e.series_id == last_id) {
          if (auto ec = send_end_answer(last_id, last_received, last_stamps)) return send_failed(ec);
        } else {
          ++st.stale_messages;
        }
        break;
      }
      case message_type::result:
        ++st.results_received;
        if (opt.on_result) opt.on_result(std::get<result_msg>(*m));
        break;
      case message_type::error: {
        ++st.errors_received;
        const auto& e = std::get<error_msg>(*m);
        if (active && (e.series_id == cur.series_id || e.series_id == 0)) {
          active = false;
          ++st.series_abandoned;
        }
        break;
      }
      case message_type::bye:
        st.ended = serve_end::bye;
        return st;
      case message_type::start_ack:
      case message_type::reply:
      case message_type::end_ack:
      case message_type::deferred:
        ++st.unexpected_messages;
        break;
    }
  }
}

}  // namespace tsync::probe
