// sync/output_file.hpp (checked, atomic outputs), sync/to_model.hpp (session
// result -> model, sorted prefix) and sync/kvm_tables.hpp (debugfs -> step tables).
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include "support/temp_dir.hpp"
#include "tsync/sync/kvm_tables.hpp"
#include "tsync/sync/output_file.hpp"
#include "tsync/sync/to_model.hpp"

namespace fs = std::filesystem;
using namespace tsync::sync;

namespace {

using tsync::test::temp_dir;
std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

TEST_CASE("atomic_file: nothing at the final path until commit, then the whole text") {
  temp_dir d;
  const auto final_path = d.path / "table.csv";
  {
    std::ofstream(final_path) << "old";
  }
  auto f = atomic_file::create(final_path.string());
  REQUIRE_FALSE(f.error());
  std::string big(200000, 'x');
  f << "head\n" << big;
  CHECK(slurp(final_path) == "old");
  REQUIRE(f.commit());
  CHECK(slurp(final_path) == "head\n" + big);
  // No temporary left behind.
  std::size_t n = 0;
  for (auto& e : fs::directory_iterator(d.path)) n += e.path().filename() == "table.csv" ? 0u : 1u;
  CHECK(n == 0);
}

TEST_CASE("atomic_file: an uncommitted file leaves the old one and no temporary") {
  temp_dir d;
  const auto final_path = d.path / "x.json";
  std::ofstream(final_path) << "old";
  {
    auto f = atomic_file::create(final_path.string());
    f << "partial";
  }
  CHECK(slurp(final_path) == "old");
  CHECK(std::distance(fs::directory_iterator(d.path), fs::directory_iterator{}) == 1);
}

TEST_CASE("atomic_file: a write error names the file and the errno text") {
  // A directory that does not exist: the create fails, and commit reports it.
  auto f = atomic_file::create("/nonexistent-dir-for-tsync/out.csv");
  f << "data";
  const auto r = f.commit();
  REQUIRE_FALSE(r);
  const tsync::text_error& e = r.error();
  CHECK(e == tsync::text_error{tsync::errc::not_found, 0, "/nonexistent-dir-for-tsync/out.csv",
                               "cannot write /nonexistent-dir-for-tsync/out.csv: No such file or directory"});
  CHECK(e.what() == "cannot write /nonexistent-dir-for-tsync/out.csv: No such file or directory");
  // /dev/full: every write fails with ENOSPC (rename over a device is not reached).
  if (fs::exists("/dev/full")) {
    append_log l = append_log::create("/dev/full");
    REQUIRE_FALSE(l.error());
    const auto x = l.append("x");
    REQUIRE_FALSE(x);
    CHECK(x.error().code == tsync::errc::io_error);
    CHECK(x.error().what() == "cannot write /dev/full: No space left on device");
    CHECK_FALSE(l.append("y"));  // the first error is kept
    CHECK(l.error() == std::errc::no_space_on_device);
  }
}

TEST_CASE("append_log: every append is on disk at once, finish renames") {
  temp_dir d;
  auto l = append_log::create((d.path / "s.csv.partial").string());
  REQUIRE(l.append("a\n"));
  CHECK(slurp(d.path / "s.csv.partial") == "a\n");  // visible before any flush or close
  REQUIRE(l.append("b\n"));
  REQUIRE(l.finish((d.path / "s.csv").string()));
  CHECK(slurp(d.path / "s.csv") == "a\nb\n");
  CHECK_FALSE(fs::exists(d.path / "s.csv.partial"));
}

TEST_CASE("sorted_prefix stops at the first sample not after the one before") {
  std::vector<tsync::sync_sample> t(4);
  t[0].guest_time = tsync::at_ns<tsync::guest>(10);
  t[1].guest_time = tsync::at_ns<tsync::guest>(20);
  t[2].guest_time = tsync::at_ns<tsync::guest>(5);  // the responder's clock went back
  t[3].guest_time = tsync::at_ns<tsync::guest>(30);
  CHECK(sorted_prefix(t) == 2);
  t[2].guest_time = tsync::at_ns<tsync::guest>(20);  // equal is not after
  CHECK(sorted_prefix(t) == 2);
  t[2].guest_time = tsync::at_ns<tsync::guest>(25);
  CHECK(sorted_prefix(t) == 4);
  CHECK(sorted_prefix(std::span<const tsync::sync_sample>{}) == 0);
}

TEST_CASE("to_model: one burst per table sample, bounds as the hard interval, stats from its series") {
  vcpu_result r;
  r.vcpu = 1;
  r.table.resize(2);
  r.table[0].guest_time = tsync::at_ns<tsync::guest>(1000);
  r.table[0].offset = tsync::guest_to_host(-50);
  r.table[0].bounds = tsync::offset_interval{-3, 4};
  r.table[1].guest_time = tsync::at_ns<tsync::guest>(2000);
  r.table[1].offset = tsync::guest_to_host(-60);
  series_record rec;
  rec.table_index = 1;
  series_estimate e{};
  e.used = 17;
  e.rejected = 2;
  e.min_rtt = 900;
  rec.estimate = e;
  r.series.push_back(rec);
  auto b = to_bursts(r);
  REQUIRE(b.size() == 2);
  CHECK(b[0].hard.lo == -53);
  CHECK(b[0].hard.hi == -46);
  CHECK(b[1].hard.lo == -60);
  CHECK(b[1].stats.probes_used == 17);
  CHECK(b[1].stats.min_rtt == 900);
  auto m = to_model(r, "split_envelope");
  REQUIRE(m);
  CHECK_FALSE(to_model(vcpu_result{}, "x"));
}

TEST_CASE("kvm_tables: offset is the negated tsc-offset with the scaling, -2^63 is refused by vCPU") {
  tsync::kvm::vm_info vm;
  tsync::kvm::vcpu_info v;
  v.id = 3;
  v.params.offset = static_cast<std::uint64_t>(-12345);
  v.params.ratio = 1ull << 48;
  v.params.frac_bits = 48;
  vm.vcpus.push_back(v);
  auto t = kvm_tables(vm);
  REQUIRE(t);
  REQUIRE(t->size() == 1);
  CHECK((*t)[0].vcpu == 3);
  CHECK((*t)[0].tsc_offset == -12345);
  CHECK((*t)[0].sample.offset.count() == 12345);
  CHECK(tsync::raw_ns((*t)[0].sample.guest_time) == 0);
  vm.vcpus[0].params.offset = 1ull << 63;
  vm.ref.path = "/kvm/10-4";
  auto bad = kvm_tables(vm);
  REQUIRE_FALSE(bad);
  CHECK(bad.error() == tsync::text_error{tsync::errc::number_out_of_range, 0, "/kvm/10-4/vcpu3/tsc-offset",
                                         "/kvm/10-4/vcpu3/tsc-offset: vCPU 3: tsc-offset -2^63 has no negation in int64"});
}

TEST_CASE("sync_parent_dir syncs the directory of a path and reports one that does not exist") {
  temp_dir d;
  CHECK(tsync::sync::detail::sync_parent_dir((d.path / "x.csv").string()).has_value());
  CHECK(tsync::sync::detail::sync_parent_dir("relative-name.csv").has_value());  // the current directory
  const auto missing = tsync::sync::detail::sync_parent_dir("/nonexistent-dir-for-tsync/x.csv");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error() == std::error_code(ENOENT, std::generic_category()));
}
