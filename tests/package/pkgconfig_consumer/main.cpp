// A consumer of the installed package found with pkg-config: converts the reference vector T9/T10
// (2.0 GHz guest on a 2.999999 GHz Intel host) both ways.
#include <tsync/tsync.hpp>

int main() {
  const tsync::kvm::tsc_params p{static_cast<std::uint64_t>(-18633982886952159LL), 187650047023786ULL, 48};
  if (!tsync::kvm::validate(p, tsync::kvm::intel)) return 1;
  const std::uint64_t g = tsync::kvm::to_guest(27951088470225859ULL, p);
  auto h = tsync::kvm::to_host(g, p);
  return (g == 82304553443ULL && h && *h == 27951088470225859ULL) ? 0 : 1;
}
