// Speed of reading and merging real trace.dat files, and the memory it takes.
//
//   tsync_tracecmd_bench HOST.dat [GUEST.dat...]
//   bench/tracecmd/record_big.sh writes a large host trace (root, tracefs, trace-cmd).
//
// Each pass opens the files afresh and reads every event; MB/s are counted on the
// files' sizes on disk and on the event records' sizes (the uncompressed ring-buffer
// data). The baseline is reading the files' bytes with read(2) (page cache warm after
// the first pass). Guests are mapped to host time with an identity function that
// returns a hard interval, so the merge does the work the CLI's models will do.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tsync/io/tracecmd_events.hpp"
#include "tsync/io/tracecmd_merge.hpp"

namespace {

using clk = std::chrono::steady_clock;

long max_rss_kb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

double seconds_since(clk::time_point t0) { return std::chrono::duration<double>(clk::now() - t0).count(); }

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct pass_result {
  std::uint64_t events = 0;
  std::uint64_t record_bytes = 0;
  double seconds = 0;
  double cpu = 0;  // CPU time (user + system) of the pass: meaningful on a loaded machine
  std::size_t heap = 0;  // malloc'd bytes in use at the end of the pass, files still open
};

std::vector<tsync::io::tracecmd_file> open_all(const std::vector<std::string>& paths) {
  std::vector<tsync::io::tracecmd_file> files;
  for (const auto& p : paths) {
    auto f = tsync::io::tracecmd_file::open(p);
    if (!f) {
      std::fprintf(stderr, "%s\n", f.error().message.c_str());
      std::exit(1);
    }
    files.push_back(std::move(*f));
  }
  return files;
}

void report(const char* what, const pass_result& r, double file_mb) {
  // maxrss counts the file pages libtracecmd maps (each CPU's data of an uncompressed
  // file); the heap in use at the end of the pass is what the reader itself keeps.
  std::printf("%-40s %8.3f s wall %8.3f s CPU %10llu events %6.2f Mevents/s %7.1f MB/s (file, CPU time) %7.1f MB/s (wall)  maxrss %ld KiB, heap %zu KiB\n",
              what, r.seconds, r.cpu, static_cast<unsigned long long>(r.events), static_cast<double>(r.events) / r.cpu / 1e6,
              file_mb / r.cpu, file_mb / r.seconds, max_rss_kb(), r.heap / 1024);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s HOST.dat [GUEST.dat...]\n", argv[0]);
    return 2;
  }
  const std::vector<std::string> paths(argv + 1, argv + argc);
  // TSYNC_BENCH_PASSES=0,3 runs passes 0 and 3 only (0 read(2), 1 per-CPU read, 2 time order + info,
  // 3 merge text, 4 merge JSON, 5 merge JSON + info, 6 trace-cmd report); default: all.
  const char* sel = std::getenv("TSYNC_BENCH_PASSES");
  const auto wanted = [sel](int k) {
    if (sel == nullptr || *sel == '\0') return true;
    for (const char* c = sel; *c != '\0'; ++c)
      if (*c - '0' == k) return true;
    return false;
  };
  double file_mb = 0;
  for (const auto& p : paths) {
    struct stat st{};
    if (::stat(p.c_str(), &st) != 0) {
      std::perror(p.c_str());
      return 1;
    }
    file_mb += static_cast<double>(st.st_size) / 1e6;
  }
  std::printf("files: %.1f MB on disk, start maxrss %ld KiB\n", file_mb, max_rss_kb());

  if (wanted(0)) {  // baseline: the bytes with read(2)
    pass_result r;
    const auto t0 = clk::now();
    const double c0 = cpu_seconds();
    std::vector<char> buf(1 << 20);
    for (const auto& p : paths) {
      const int fd = ::open(p.c_str(), O_RDONLY);
      ssize_t n = 0;
      while ((n = ::read(fd, buf.data(), buf.size())) > 0) r.record_bytes += static_cast<std::uint64_t>(n);
      ::close(fd);
    }
    r.seconds = seconds_since(t0);
    r.cpu = cpu_seconds() - c0;
    r.heap = mallinfo2().uordblks;
    report("baseline: read(2) the files", r, file_mb);
  }
  std::uint64_t record_bytes = 0;
  if (wanted(1)) {  // per-CPU order, timestamps only
    pass_result r;
    const auto t0 = clk::now();
    const double c0 = cpu_seconds();
    auto files = open_all(paths);
    for (auto& f : files)
      for (std::size_t b = 0; b < f.buffer_count(); ++b)
        for (std::uint32_t c = 0; c < f.buffer(b).cpu_count(); ++c)
          for (const auto* e = f.buffer(b).peek(c); e != nullptr; e = f.buffer(b).peek(c)) {
            ++r.events;
            r.record_bytes += static_cast<std::uint64_t>(e->record->record_size);
            f.buffer(b).pop(c);
          }
    r.seconds = seconds_since(t0);
    r.cpu = cpu_seconds() - c0;
    r.heap = mallinfo2().uordblks;
    record_bytes = r.record_bytes;
    report("read per CPU (event fields, no text)", r, file_mb);
  }
  if (wanted(2)) {  // merged order within each file, with the info text
    pass_result r;
    const auto t0 = clk::now();
    const double c0 = cpu_seconds();
    auto files = open_all(paths);
    std::size_t chars = 0;
    for (auto& f : files)
      for (const auto* e = f.next(); e != nullptr; e = f.next()) {
        ++r.events;
        chars += f.buffer(e->buffer).info(*e).size();
      }
    r.seconds = seconds_since(t0);
    r.cpu = cpu_seconds() - c0;
    r.heap = mallinfo2().uordblks;
    r.record_bytes = record_bytes;
    report("read in time order + info text", r, file_mb);
    if (chars == 0) std::printf("(no info text)\n");
  }
  for (const int mode : {0, 1, 2}) {  // text, JSON with fields, JSON with fields and info
    if (!wanted(3 + mode)) continue;
    const bool json = mode != 0;
    pass_result r;
    const auto t0 = clk::now();
    const double c0 = cpu_seconds();
    auto files = open_all(paths);
    std::vector<tsync::io::merge_input> in;
    for (std::size_t i = 0; i < files.size(); ++i) {
      tsync::io::merge_input m{&files[i], i == 0 ? "host" : "guest" + std::to_string(i), {}};
      if (i > 0)
        m.map = [](std::uint32_t, std::uint64_t ts) -> tsync::expected<tsync::io::host_placement, tsync::errc> {
          const auto t = static_cast<std::int64_t>(ts);
          return tsync::io::host_placement{t, true, t - 500, t + 500};
        };
      in.push_back(std::move(m));
    }
    std::FILE* out = std::fopen("/dev/null", "w");
    tsync::expected<tsync::io::merge_stats, tsync::text_error> st = tsync::io::merge_stats{};
    if (json) {
      tsync::io::chrome_json_writer w(out, "/dev/null");
      w.set_info(mode == 2);
      st = tsync::io::merge_events(std::span<const tsync::io::merge_input>(in), w);
    } else {
      tsync::io::report_text_writer w(out, "/dev/null");
      st = tsync::io::merge_events(std::span<const tsync::io::merge_input>(in), w);
    }
    std::fclose(out);
    if (!st) {
      std::fprintf(stderr, "%s\n", st.error().message.c_str());
      return 1;
    }
    r.seconds = seconds_since(t0);
    r.cpu = cpu_seconds() - c0;
    r.heap = mallinfo2().uordblks;
    r.events = st->events;
    r.record_bytes = record_bytes;
    report(mode == 0 ? "merge -> report text" : mode == 1 ? "merge -> Chrome JSON (fields)" : "merge -> Chrome JSON (fields + info)", r,
           file_mb);
  }
  if (wanted(6)) {  // baseline: trace-cmd report --raw-ts on each file (its CPU time as a child)
    pass_result r;
    const auto t0 = clk::now();
    rusage before{};
    getrusage(RUSAGE_CHILDREN, &before);
    for (const auto& p : paths) {
      const std::string c = "trace-cmd report --raw-ts '" + p + "' > /dev/null 2>&1";
      if (std::system(c.c_str()) != 0) std::fprintf(stderr, "trace-cmd report failed on %s\n", p.c_str());
    }
    rusage after{};
    getrusage(RUSAGE_CHILDREN, &after);
    r.seconds = seconds_since(t0);
    const auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    r.cpu = tv(after.ru_utime) + tv(after.ru_stime) - tv(before.ru_utime) - tv(before.ru_stime);
    r.record_bytes = record_bytes;
    report("baseline: trace-cmd report --raw-ts", r, file_mb);
  }
  return 0;
}
