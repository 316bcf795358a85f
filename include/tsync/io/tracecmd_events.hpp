#pragma once
/// \file
/// Read the events of a trace-cmd `trace.dat` file (format versions 6 and 7,
/// compressed v7 sections included) through Debian's libtracecmd and
/// libtraceevent, with trace-cmd's own timestamp correction turned OFF: every
/// timestamp is the raw ring-buffer timestamp, as `trace-cmd report --raw-ts`
/// prints it (no TIME_SHIFT guest correction, no TSC2NSEC scaling, no DATE or
/// OFFSET option applied).
///
/// This is the only tsync header that includes libtracecmd's headers; it needs
/// the optional CMake target `tsync::tracecmd` (defined only when pkg-config
/// finds libtracecmd >= 1.3, libtraceevent and libtracefs). The header-only core
/// (`tsync::tsync`, `tsync/tsync.hpp`) never includes it.
///
/// How libtracecmd is driven (trace-cmd 3.1.6, libtracecmd 1.3.1):
/// `tracecmd_alloc_fd` -> `tracecmd_set_flag(TRACECMD_FL_RAW_TS)` ->
/// `tracecmd_read_headers` -> `tracecmd_init_data`, the sequence `trace-cmd
/// report --raw-ts` uses. The flag is set BEFORE the options are read, so
/// libtracecmd skips TIME_SHIFT, TSC2NSEC, DATE and OFFSET entirely: files
/// whose TIME_SHIFT option is broken (trace-cmd's B7 counts) open fine. The
/// four functions of that sequence that are not in the installed public header
/// (`tracecmd_alloc_fd`, `tracecmd_read_headers`, `tracecmd_set_flag`,
/// `tracecmd_get_flags`, and the getters `tracecmd_cpus`,
/// `tracecmd_get_trace_clock`, `tracecmd_get_in_file_version`,
/// `tracecmd_get_file_compress_proto`, `tracecmd_is_buffer_instance`) are
/// exported by the library and declared below with the prototypes of trace-cmd
/// 3.1's private header. Events are read with `tracecmd_read_data` (one
/// `tep_record` per CPU held at a time), described with
/// `tep_find_event_by_record`, `tep_data_pid`, `tep_data_comm_from_pid`, and
/// formatted with `tep_print_event(..., TEP_PRINT_INFO)` (libtraceevent's
/// plugins included), which is what `trace-cmd report` prints after the event
/// name.
///
/// Memory: a reader holds at most one record (and the page or decompressed
/// chunk under it) per CPU. libtracecmd 1.3 itself never frees a decompressed
/// chunk before the file is closed (its free_zpage() searches its cache with a
/// condition that is never true; fixed upstream in 2024): on compressed files
/// the reader therefore reopens libtracecmd's handles every 64 MiB of records
/// and puts every CPU back at its record (`tracecmd_file::set_reopen_bytes`),
/// so the heap stays bounded. libtracecmd also mmaps each CPU's whole data of
/// an uncompressed file (file pages, not heap) and keeps a small table of
/// compressed-chunk descriptors per CPU.
///
/// Guest files: trace-cmd's guest file numbers its CPUs by vCPU, so
/// `tracecmd_event::cpu` of a guest file IS the vCPU index. A host file
/// recorded with `-A` lists its guests (GUEST option: name, trace id, vCPU
/// count, host thread of each vCPU): `tracecmd_file::guest(trace_id)`.
/// libtracecmd has no public accessor for the TIME_SHIFT samples (and with raw
/// timestamps it does not parse them): read them with the option reader.
///
/// Errors: every failure is a `text_error` naming the file; nothing
/// throws. libtracecmd itself prints warnings to stderr for damaged files
/// (`tracecmd_set_loglevel` silences them). A read error inside a CPU's data is
/// indistinguishable, through libtracecmd, from the end of that CPU's data.

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sched.h>  // cpu_set_t, used by trace-cmd.h

#include <event-parse.h>
#include <trace-seq.h>
// trace-cmd.h includes tracefs.h, which libtracefs 1.6 writes in C that is not C++
// (an int passed as an enum in an inline function). Nothing used here comes from
// it, so its include guard is defined beforehand when nobody has included it yet.
#ifndef _TRACE_FS_H
#define _TRACE_FS_H
#define TSYNC_SKIPPED_TRACEFS_H
#endif
#include <trace-cmd.h>
#ifdef TSYNC_SKIPPED_TRACEFS_H
#undef _TRACE_FS_H
#undef TSYNC_SKIPPED_TRACEFS_H
#endif

#include "tsync/core/config.hpp"
#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/io/tracecmd_info.hpp"

// libtracecmd 1.3 (trace-cmd 3.1) exports these but declares them only in its
// private header; the prototypes are those of that header (an enum parameter is
// declared as int, its underlying type).
extern "C" {
struct tracecmd_input* tracecmd_alloc_fd(int fd, int flags);
int tracecmd_read_headers(struct tracecmd_input* handle, int state);
void tracecmd_set_flag(struct tracecmd_input* handle, int flag);
unsigned long tracecmd_get_flags(struct tracecmd_input* handle);
int tracecmd_cpus(struct tracecmd_input* handle);
const char* tracecmd_get_trace_clock(struct tracecmd_input* handle);
unsigned long tracecmd_get_in_file_version(struct tracecmd_input* handle);
int tracecmd_get_file_compress_proto(struct tracecmd_input* handle, const char** name, const char** version);
int tracecmd_is_buffer_instance(struct tracecmd_input* handle);
}

namespace tsync::inline TSYNC_ABI::io {

/// trace-cmd 3.1's private flag "do not modify raw timestamps" (TRACECMD_FL_RAW_TS).
inline constexpr int tracecmd_flag_raw_ts = 1 << 3;

/// Deprecated (one release): the event reader's errors are plain `text_error`s
/// (see docs/concepts.md, "Errors") whose message starts with the file's path.
using tracecmd_read_error [[deprecated("use tsync::text_error")]] = text_error;

/// One event, as read from one CPU of one buffer. The string views and
/// `record` stay valid until the next advance (`pop`, `next`) of any CPU of
/// the same file (an advance may reopen the file), or until it is destroyed;
/// the strings belong to the file's event parser.
struct tracecmd_event {
  std::uint64_t ts = 0;             ///< raw ring-buffer timestamp (trace-cmd's correction off)
  std::uint32_t cpu = 0;            ///< CPU of the ring buffer; in a guest file, the vCPU index
  std::uint32_t buffer = 0;         ///< index of the buffer in its file (0: the top-level buffer)
  std::int32_t pid = 0;             ///< common_pid of the event
  std::int64_t missed_events = 0;   ///< events the kernel dropped before this one (<0: an unknown number)
  std::string_view system;          ///< event system ("sched"); empty if the event's format is unknown
  std::string_view name;            ///< event name ("sched_switch"); empty if the event id is unknown
  std::string_view comm;            ///< command name of pid from the file's cmdlines ("<...>" if unknown)
  struct tep_record* record = nullptr;  ///< libtraceevent's record (for tep_* calls)
  const struct tep_event* format = nullptr;  ///< the event's format (fields); nullptr if the id is unknown
};

/// A guest listed in a host file's GUEST option.
struct tracecmd_guest_info {
  std::string name;                    ///< guest name as given to `trace-cmd record -A`
  std::uint64_t trace_id = 0;          ///< the guest file's trace id
  std::vector<std::int32_t> vcpu_tid;  ///< host thread id of each vCPU (-1 unknown), index = vCPU
};

namespace detail {

struct tracecmd_input_closer {
  void operator()(tracecmd_input* h) const noexcept {
    if (h != nullptr) tracecmd_close(h);
  }
};
using tracecmd_input_ptr = std::unique_ptr<tracecmd_input, tracecmd_input_closer>;

/// A binary min-heap of (key, stream) pairs; ties go to the lower stream index,
/// so a merge is deterministic. Bounded by the number of streams.
class stream_heap {
 public:
  struct item {
    std::int64_t key;
    std::uint32_t stream;
  };
  void clear() noexcept { v_.clear(); }
  [[nodiscard]] bool empty() const noexcept { return v_.empty(); }
  [[nodiscard]] const item& top() const noexcept { return v_.front(); }
  void reserve(std::size_t n) { v_.reserve(n); }
  void push(item it) {
    v_.push_back(it);
    std::size_t i = v_.size() - 1;
    while (i > 0) {
      const std::size_t p = (i - 1) / 2;
      if (!less(v_[i], v_[p])) break;
      std::swap(v_[i], v_[p]);
      i = p;
    }
  }
  void pop() noexcept {
    v_.front() = v_.back();
    v_.pop_back();
    sift_down(0);
  }
  /// Replace the top by `it` (cheaper than pop + push).
  void replace_top(item it) noexcept {
    v_.front() = it;
    sift_down(0);
  }

 private:
  static bool less(const item& a, const item& b) noexcept {
    return a.key < b.key || (a.key == b.key && a.stream < b.stream);
  }
  void sift_down(std::size_t i) noexcept {
    const std::size_t n = v_.size();
    for (;;) {
      std::size_t m = i;
      const std::size_t l = 2 * i + 1, r = l + 1;
      if (l < n && less(v_[l], v_[m])) m = l;
      if (r < n && less(v_[r], v_[m])) m = r;
      if (m == i) return;
      std::swap(v_[i], v_[m]);
      i = m;
    }
  }
  std::vector<item> v_;
};

/// A raw timestamp as a merge key: raw timestamps above INT64_MAX (never seen
/// in practice) sort last instead of wrapping negative.
[[nodiscard]] inline std::int64_t ts_key(std::uint64_t ts) noexcept {
  return ts > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
             ? std::numeric_limits<std::int64_t>::max()
             : static_cast<std::int64_t>(ts);
}

}  // namespace detail

class tracecmd_file;
class tracecmd_buffer;

namespace detail {
struct tracecmd_state;
void tracecmd_after_pop(tracecmd_state& st) noexcept;
}  // namespace detail

/// One ring-buffer set of a file: the top-level buffer (index 0, name "") or an
/// instance recorded with `-B NAME`. Read it per CPU (`peek`/`pop`) or, through
/// the file, in merged time order; do not mix the two on one file.
class tracecmd_buffer {
 public:
  tracecmd_buffer(const tracecmd_buffer&) = delete;
  tracecmd_buffer& operator=(const tracecmd_buffer&) = delete;
  ~tracecmd_buffer() {
    release_all();
    trace_seq_destroy(&seq_);
  }

  /// The instance name ("" for the top-level buffer).
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  /// Number of CPUs (vCPUs in a guest file) the buffer has data slots for.
  [[nodiscard]] std::uint32_t cpu_count() const noexcept { return static_cast<std::uint32_t>(slots_.size()); }
  /// The buffer's trace clock as libtracecmd reports it ("local", "mono_raw", "x86-tsc"...; "" unknown).
  [[nodiscard]] std::string_view trace_clock() const noexcept {
    const char* c = h_ != nullptr ? tracecmd_get_trace_clock(h_) : nullptr;
    return c != nullptr ? std::string_view(c) : std::string_view();
  }

  /// The next unread event of `cpu`, or nullptr at the end of its data (or for
  /// a cpu >= cpu_count()). Does not advance. The event stays valid until the
  /// next `pop` on any CPU of this file (a pop may reopen the file, see
  /// `tracecmd_file::set_reopen_bytes`; the event's values stay the same).
  [[nodiscard]] const tracecmd_event* peek(std::uint32_t cpu) noexcept {
    if (cpu >= slots_.size()) return nullptr;
    slot& s = slots_[cpu];
    if (!s.loaded && !s.done) load(s, cpu);
    return s.loaded ? &s.ev : nullptr;
  }
  /// Advance `cpu` past its current event (frees the record).
  void pop(std::uint32_t cpu) noexcept {
    if (cpu >= slots_.size()) return;
    slot& s = slots_[cpu];
    if (!s.loaded && !s.done) load(s, cpu);
    if (!s.loaded) return;
    release(s);
    detail::tracecmd_after_pop(*st_);
  }

  /// The text `trace-cmd report` prints after the event name (libtraceevent's
  /// TEP_PRINT_INFO, plugins included), without a trailing newline. The view
  /// stays valid until the next call on this buffer. Empty if libtraceevent
  /// could not allocate.
  ///
  /// Events whose print format is plain (fields and fixed-index array
  /// elements through `%d %u %x %s`... and literal text; see
  /// io/tracecmd_info.hpp) are printed by a compiled form of the format, with
  /// libtraceevent's rules and the same text; every other event through
  /// libtraceevent.
  [[nodiscard]] std::string_view info(const tracecmd_event& e) noexcept {
    if (e.record == nullptr) return {};
    if (e.format != nullptr) {
      try {
        const detail::info_program& p = info_cache_.get(tep_, e.format);
        if (p.ok()) {
          text_.clear();
          if (p.print(e.record->data, e.record->size, text_)) {
            ++compiled_infos_;
            note_pids(e);
            return without_line_end(text_.data(), text_.size());
          }
        }
      } catch (...) {  // out of memory: libtraceevent's path below
      }
    }
    return info_libtraceevent(e);
  }
  /// The same text, always through libtraceevent's `tep_print_event` (the
  /// reference the compiled formats are tested against).
  [[nodiscard]] std::string_view info_libtraceevent(const tracecmd_event& e) noexcept {
    trace_seq_reset(&seq_);
    if (e.record == nullptr) return {};
    tep_print_event(tep_, &seq_, e.record, "%s", TEP_PRINT_INFO);
    note_pids(e);
    if (seq_.state != TRACE_SEQ__GOOD || seq_.buffer == nullptr) return {};
    return without_line_end(seq_.buffer, seq_.len);
  }
  /// `p[0, n)` without the trailing newlines and NULs libtraceevent may leave.
  [[nodiscard]] static std::string_view without_line_end(const char* p, std::size_t n) noexcept {
    while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\0')) --n;
    return {p, n};
  }
  /// How many `info` texts the compiled formats printed (the rest went through libtraceevent).
  [[nodiscard]] std::uint64_t compiled_infos() const noexcept { return compiled_infos_; }

  /// The buffer's event parser (libtraceevent; it changes when the file is reopened).
  [[nodiscard]] tep_handle* tep() const noexcept { return tep_; }
  /// libtracecmd's handle of this buffer (for calls this class does not wrap;
  /// it changes when the file is reopened).
  [[nodiscard]] tracecmd_input* handle() const noexcept { return h_; }

 private:
  friend class tracecmd_file;
  friend struct detail::tracecmd_state;
  struct slot {
    tracecmd_event ev;
    bool loaded = false;
    bool done = false;
    bool consumed = false;         // at least one record of this CPU was popped
    std::uint64_t last_offset = 0;  // libtracecmd's offset of the last popped record
    std::uint64_t held_offset = 0;  // offset of the held record, kept across a reopen
  };

  tracecmd_buffer(detail::tracecmd_state* st, std::string name, std::uint32_t index) : st_(st), name_(std::move(name)), index_(index) {
    trace_seq_init(&seq_);
  }

  // Attach libtracecmd's handle (on open, and again on every reopen).
  void attach(tracecmd_input* h, bool owned) noexcept {
    h_ = h;
    owned_.reset(owned ? h : nullptr);
    tep_ = tracecmd_get_tep(h);
  }
  void fill(slot& s, tep_record* r, std::uint32_t cpu) noexcept {
    tracecmd_event& e = s.ev;
    e.record = r;
    e.ts = r->ts;
    e.cpu = cpu;
    e.buffer = index_;
    e.missed_events = r->missed_events;
    e.pid = tep_data_pid(tep_, r);
    const tep_event* ev = tep_find_event_by_record(tep_, r);
    e.format = ev;
    e.system = (ev != nullptr && ev->system != nullptr) ? std::string_view(ev->system) : std::string_view();
    e.name = (ev != nullptr && ev->name != nullptr) ? std::string_view(ev->name) : std::string_view();
    const char* comm = tep_data_comm_from_pid(tep_, e.pid);
    e.comm = comm != nullptr ? std::string_view(comm) : std::string_view("<...>");
    s.loaded = true;
  }
  void load(slot& s, std::uint32_t cpu) noexcept;
  void note_pids(const tracecmd_event& e) noexcept;
  void release(slot& s) noexcept {
    if (s.loaded) {
      s.last_offset = s.ev.record->offset;
      s.consumed = true;
      tracecmd_free_record(s.ev.record);
      s.ev.record = nullptr;
      s.loaded = false;
    }
  }
  // Free the held records but remember where each CPU stands (before a reopen:
  // `loaded` stays set, the record is read again at `held_offset`).
  void release_all() noexcept {
    for (auto& s : slots_)
      if (s.loaded && s.ev.record != nullptr) {
        s.held_offset = s.ev.record->offset;
        tracecmd_free_record(s.ev.record);
        s.ev.record = nullptr;
      }
  }

  detail::tracecmd_state* st_;
  tracecmd_input* h_ = nullptr;
  detail::tracecmd_input_ptr owned_;  // instance handles are ours to close; the top-level one is the file's
  tep_handle* tep_ = nullptr;
  std::string name_;
  std::uint32_t index_;
  std::vector<slot> slots_;
  trace_seq seq_{};
  detail::info_cache info_cache_;
  std::string text_;
  std::uint64_t compiled_infos_ = 0;
};

namespace detail {

/// What a tracecmd_file owns, at a stable address (buffers point to it).
struct tracecmd_state {
  std::string path;
  int fd = -1;  // our own descriptor of the file: every (re)open reads a dup of it
  tracecmd_input_ptr top;
  std::uint32_t version = 0;
  std::vector<std::unique_ptr<tracecmd_buffer>> buffers;
  std::uint64_t reopen_bytes = 0;  // set on the first open: 64 MiB for compressed files, else 0
  std::uint64_t since_reopen = 0;  // record bytes read since the last (re)open
  std::uint64_t reopens = 0;
  std::optional<text_error> error;  // a failed reopen: every CPU ends early
  // libtraceevent's plugins learn comms while they print (sched_switch's next_comm):
  // the pids of the *pid fields of printed events, whose comms a reopen carries over.
  std::unordered_set<int> printed_pids;
  std::unordered_map<const tep_event*, std::vector<tep_format_field*>> pid_fields;

  tracecmd_state() = default;
  tracecmd_state(const tracecmd_state&) = delete;
  tracecmd_state& operator=(const tracecmd_state&) = delete;
  ~tracecmd_state() {
    buffers.clear();  // instance handles first: each holds a reference on the top-level handle
    top.reset();
    if (fd >= 0) ::close(fd);
  }

  [[nodiscard]] text_error fail(errc c, const std::string& what) const { return text_error{c, 0, path + ": " + what}; }

  /// Open libtracecmd's handles on a dup of `fd` (raw timestamps), and attach them to the
  /// buffers (created on the first open; on a reopen the layout must be the same).
  [[nodiscard]] expected<void, text_error> open_handles() {
    if (::lseek(fd, 0, SEEK_SET) != 0) return unexpected(fail(errc::io_error, std::string("cannot seek: ") + std::strerror(errno)));
    const int hfd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (hfd < 0) return unexpected(fail(errc::io_error, std::string("cannot dup the descriptor: ") + std::strerror(errno)));
    tracecmd_input* raw = tracecmd_alloc_fd(hfd, 0);
    if (raw == nullptr) {
      ::close(hfd);  // tracecmd_alloc_fd does not close the descriptor when it fails
      return unexpected(fail(errc::invalid_argument, "not a trace-cmd data file (bad magic, or a header libtracecmd cannot read)"));
    }
    tracecmd_input_ptr h(raw);  // from here on tracecmd_close closes hfd
    const unsigned long v = tracecmd_get_in_file_version(raw);
    if (v != 6 && v != 7)
      return unexpected(fail(errc::unsupported_version, "trace.dat version " + std::to_string(v) + " (6 and 7 are supported)"));
    tracecmd_set_flag(raw, tracecmd_flag_raw_ts);  // before the options are read: no correction at all
    if (tracecmd_read_headers(raw, 0) < 0) return unexpected(fail(errc::invalid_argument, "libtracecmd could not read the headers"));
    if (tracecmd_init_data(raw) < 0)
      return unexpected(fail(errc::invalid_argument, "libtracecmd could not read the CPU data sections"));
    if ((tracecmd_get_flags(raw) & static_cast<unsigned long>(tracecmd_flag_raw_ts)) == 0)
      return unexpected(fail(errc::unsupported, "libtracecmd dropped the raw-timestamp flag"));
    const int n = tracecmd_buffer_instances(raw);
    const bool first = buffers.empty();
    if (!first && buffers.size() != static_cast<std::size_t>(n) + 1)
      return unexpected(fail(errc::io_error, "the file changed while it was read (buffer count)"));
    std::vector<tracecmd_input_ptr> inst;
    for (int i = 0; i < n; ++i) {
      tracecmd_input* ih = tracecmd_buffer_instance_handle(raw, i);
      if (ih == nullptr)
        return unexpected(fail(errc::invalid_argument, "libtracecmd could not open buffer instance " + std::to_string(i)));
      inst.emplace_back(ih);
    }
    if (first) {
      version = static_cast<std::uint32_t>(v);
      const char* zname = nullptr;
      const char* zver = nullptr;
      if (tracecmd_get_file_compress_proto(raw, &zname, &zver) >= 0 && zname != nullptr) reopen_bytes = std::uint64_t{64} << 20;
      buffers.push_back(std::unique_ptr<tracecmd_buffer>(new tracecmd_buffer(this, std::string(), 0)));
      for (int i = 0; i < n; ++i) {
        const char* nm = tracecmd_buffer_instance_name(raw, i);
        buffers.push_back(std::unique_ptr<tracecmd_buffer>(
            new tracecmd_buffer(this, nm != nullptr ? std::string(nm) : std::string(), static_cast<std::uint32_t>(i) + 1)));
      }
    }
    const auto cpus_of = [](tracecmd_input* x) {
      const int c = tracecmd_cpus(x);
      return c > 0 ? static_cast<std::size_t>(c) : std::size_t{0};
    };
    if (first) {
      buffers[0]->slots_.resize(cpus_of(raw));
      for (int i = 0; i < n; ++i) buffers[static_cast<std::size_t>(i) + 1]->slots_.resize(cpus_of(inst[static_cast<std::size_t>(i)].get()));
    } else {
      bool same = buffers[0]->slots_.size() == cpus_of(raw);
      for (int i = 0; i < n; ++i) same = same && buffers[static_cast<std::size_t>(i) + 1]->slots_.size() == cpus_of(inst[static_cast<std::size_t>(i)].get());
      if (!same) return unexpected(fail(errc::io_error, "the file changed while it was read (CPU count)"));
    }
    for (auto& b : buffers) b->owned_.reset();  // close the old instance handles before the old top-level one
    top = std::move(h);
    buffers[0]->attach(top.get(), false);
    for (int i = 0; i < n; ++i) buffers[static_cast<std::size_t>(i) + 1]->attach(inst[static_cast<std::size_t>(i)].release(), true);
    since_reopen = 0;
    return {};
  }

  /// Close and reopen libtracecmd's handles, and put every CPU back where it was.
  /// libtracecmd 1.3 never frees the chunks it decompresses (its free_zpage()
  /// looks them up with an impossible condition) and maps each CPU's whole data
  /// at once; closing is the only way to give that memory back.
  void reopen() noexcept {
    // The comms the old parser knows for the printed pids (file cmdlines and what its
    // plugins learned), to give the new parser the same answers.
    std::vector<std::pair<int, std::string>> comms;
    tep_handle* old_tep = tracecmd_get_tep(top.get());
    for (const int pid : printed_pids) {
      const char* c = tep_data_comm_from_pid(old_tep, pid);
      if (c != nullptr && std::strcmp(c, "<...>") != 0) comms.emplace_back(pid, c);
    }
    pid_fields.clear();  // keyed by the old parser's events
    for (auto& b : buffers) b->release_all();
    auto r = open_handles();
    if (!r) {
      stop(r.error());
      return;
    }
    ++reopens;
    tep_handle* new_tep = tracecmd_get_tep(top.get());
    for (const auto& [pid, c] : comms) tep_override_comm(new_tep, c.c_str(), pid);
    for (auto& b : buffers)
      for (std::uint32_t c = 0; c < b->slots_.size(); ++c) {
        tracecmd_buffer::slot& s = b->slots_[c];
        if (s.done || (!s.loaded && !s.consumed)) continue;
        // Reload the held record, or step over the last consumed one.
        const unsigned long long off = s.loaded ? s.held_offset : s.last_offset;
        int cpu = -1;
        tep_record* rec = tracecmd_read_at(b->h_, off, &cpu);
        if (rec == nullptr || cpu != static_cast<int>(c) || rec->offset != off) {
          if (rec != nullptr) tracecmd_free_record(rec);
          stop(fail(errc::io_error, "libtracecmd could not find record offset " + std::to_string(off) + " again after reopening"));
          return;
        }
        if (s.loaded) {
          b->fill(s, rec, c);
        } else {
          tracecmd_free_record(rec);
        }
      }
  }

  void stop(text_error e) noexcept {
    error = std::move(e);
    for (auto& b : buffers) {
      b->release_all();
      for (auto& s : b->slots_) {
        s.loaded = false;
        s.done = true;
      }
    }
  }
};

inline void tracecmd_after_pop(tracecmd_state& st) noexcept {
  if (st.reopen_bytes != 0 && st.since_reopen >= st.reopen_bytes && !st.error) st.reopen();
}

}  // namespace detail

inline void tracecmd_buffer::load(slot& s, std::uint32_t cpu) noexcept {
  tep_record* r = h_ != nullptr ? tracecmd_read_data(h_, static_cast<int>(cpu)) : nullptr;
  if (r == nullptr) {
    s.done = true;
    return;
  }
  st_->since_reopen += static_cast<std::uint64_t>(r->record_size > 0 ? r->record_size : 0);
  fill(s, r, cpu);
}

inline void tracecmd_buffer::note_pids(const tracecmd_event& e) noexcept {
  if (st_->reopen_bytes == 0) return;  // only a reopen needs the comms printing taught libtraceevent
  tep_event* ev = tep_find_event_by_record(tep_, e.record);
  if (ev == nullptr) return;
  auto it = st_->pid_fields.find(ev);
  if (it == st_->pid_fields.end()) {
    std::vector<tep_format_field*> f;
    for (tep_format_field* x = ev->format.fields; x != nullptr; x = x->next) {
      const std::string_view n = x->name != nullptr ? std::string_view(x->name) : std::string_view();
      if (n.size() >= 3 && n.substr(n.size() - 3) == "pid" && (x->size == 4 || x->size == 8) &&
          (x->flags & TEP_FIELD_IS_ARRAY) == 0)
        f.push_back(x);
    }
    it = st_->pid_fields.emplace(ev, std::move(f)).first;
  }
  for (tep_format_field* x : it->second) {
    unsigned long long v = 0;
    if (tep_read_number_field(x, e.record->data, &v) == 0)
      st_->printed_pids.insert(static_cast<int>(static_cast<std::int64_t>(v)));
  }
}

/// An open trace.dat file (move-only). Open with `tracecmd_file::open`.
class tracecmd_file {
 public:
  /// Open `path` with raw timestamps. Errors: not_found / permission_denied /
  /// io_error (open), invalid_argument (not a trace-cmd file, or a format
  /// libtracecmd cannot read: its message says which step failed),
  /// unsupported_version (a file version other than 6 or 7).
  [[nodiscard]] static expected<tracecmd_file, text_error> open(const std::string& path) {
    auto st = std::make_unique<detail::tracecmd_state>();
    st->path = path;
    st->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (st->fd < 0) {
      const int e = errno;
      const errc c = e == ENOENT ? errc::not_found : e == EACCES || e == EPERM ? errc::permission_denied : errc::io_error;
      return unexpected(text_error{c, 0, path + ": cannot open: " + std::strerror(e)});
    }
    struct stat sb{};
    if (::fstat(st->fd, &sb) != 0 || !S_ISREG(sb.st_mode))
      return unexpected(text_error{errc::invalid_argument, 0, path + ": not a regular file"});
    auto r = st->open_handles();
    if (!r) return unexpected(std::move(r.error()));
    return tracecmd_file(std::move(st));
  }

  [[nodiscard]] const std::string& path() const noexcept { return st_->path; }
  /// The trace.dat format version (6 or 7).
  [[nodiscard]] std::uint32_t file_version() const noexcept { return st_->version; }
  /// The compression algorithm of a v7 file ("zstd", "zlib"), or "" when uncompressed.
  [[nodiscard]] std::string compression() const {
    const char* name = nullptr;
    const char* ver = nullptr;
    if (tracecmd_get_file_compress_proto(st_->top.get(), &name, &ver) < 0 || name == nullptr) return {};
    return name;
  }
  /// The file's trace clock (its TRACECLOCK option, "" if absent).
  [[nodiscard]] std::string_view trace_clock() const noexcept { return st_->buffers.front()->trace_clock(); }
  /// The file's trace id (TRACEID option, 0 if absent; a guest's id is what its host's GUEST option lists).
  [[nodiscard]] std::uint64_t trace_id() const noexcept { return tracecmd_get_traceid(st_->top.get()); }
  /// The top-level buffer's CPU count (vCPUs of a guest file).
  [[nodiscard]] std::uint32_t cpu_count() const noexcept { return st_->buffers.front()->cpu_count(); }
  /// Number of buffers: 1 (the top-level buffer) + the instances.
  [[nodiscard]] std::size_t buffer_count() const noexcept { return st_->buffers.size(); }
  /// Buffer `i` (0: top-level). Precondition: i < buffer_count().
  [[nodiscard]] tracecmd_buffer& buffer(std::size_t i) noexcept { return *st_->buffers[i]; }
  /// The file's event parser (libtraceevent; it changes when the file is reopened).
  [[nodiscard]] tep_handle* tep() const noexcept { return tracecmd_get_tep(st_->top.get()); }
  /// libtracecmd's top-level handle (it changes when the file is reopened).
  [[nodiscard]] tracecmd_input* handle() const noexcept { return st_->top.get(); }

  /// Reopen libtracecmd's handles after every `n` bytes of records read (0:
  /// never). libtracecmd 1.3 keeps every chunk it decompresses until the file
  /// is closed (heap that grows with the trace); reopening, and finding each
  /// CPU's place again, bounds it. Default: 64 MiB for compressed files, never
  /// for uncompressed ones (libtracecmd maps each CPU's whole data with mmap:
  /// file pages, which the kernel can drop, not heap). Each reopen parses the
  /// headers again: about 15 ms, 250 ms with a 5 MB kallsyms section.
  void set_reopen_bytes(std::uint64_t n) noexcept { st_->reopen_bytes = n; }
  /// How many times the file was reopened so far.
  [[nodiscard]] std::uint64_t reopens() const noexcept { return st_->reopens; }
  /// The error that ended the reading early (a failed reopen), if any. Check it
  /// after the last event: without it, the end was the end of the data.
  [[nodiscard]] const std::optional<text_error>& error() const noexcept { return st_->error; }

  /// The guest with trace id `id` from this (host) file's GUEST options, if listed.
  [[nodiscard]] std::optional<tracecmd_guest_info> guest(std::uint64_t id) const {
    const char* nm = nullptr;
    int n = 0;
    const int* tids = nullptr;
    if (tracecmd_get_guest_cpumap(st_->top.get(), id, &nm, &n, &tids) < 0) return std::nullopt;
    tracecmd_guest_info g;
    g.name = nm != nullptr ? nm : "";
    g.trace_id = id;
    if (n > 0 && tids != nullptr) g.vcpu_tid.assign(tids, tids + n);
    return g;
  }

  /// The next event of the whole file (every buffer, every CPU) in raw-timestamp
  /// order (ties: lower buffer, then lower CPU), or nullptr at the end. The
  /// event stays valid until the next call.
  [[nodiscard]] const tracecmd_event* next() noexcept {
    if (!started_) start();
    if (pending_) {
      buffer(pending_->first).pop(pending_->second);
      const tracecmd_event* e = buffer(pending_->first).peek(pending_->second);
      if (e != nullptr)
        heap_.replace_top({detail::ts_key(e->ts), heap_.top().stream});
      else
        heap_.pop();
      pending_.reset();
    }
    if (heap_.empty()) return nullptr;
    const std::uint32_t s = heap_.top().stream;
    pending_ = stream_of_[s];
    return buffer(pending_->first).peek(pending_->second);
  }

 private:
  explicit tracecmd_file(std::unique_ptr<detail::tracecmd_state> st) noexcept : st_(std::move(st)) {}

  void start() {
    started_ = true;
    for (std::uint32_t b = 0; b < buffer_count(); ++b)
      for (std::uint32_t c = 0; c < buffer(b).cpu_count(); ++c) {
        const tracecmd_event* e = buffer(b).peek(c);
        if (e == nullptr) continue;
        stream_of_.emplace_back(b, c);
        heap_.push({detail::ts_key(e->ts), static_cast<std::uint32_t>(stream_of_.size() - 1)});
      }
  }

  std::unique_ptr<detail::tracecmd_state> st_;
  bool started_ = false;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> stream_of_;  // heap stream -> (buffer, cpu)
  detail::stream_heap heap_;
  std::optional<std::pair<std::uint32_t, std::uint32_t>> pending_;  // returned by next(), pop on the next call
};

}  // namespace tsync::io
