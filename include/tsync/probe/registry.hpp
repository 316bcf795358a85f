#pragma once
/// \file
/// Deprecated path, kept for one release: include `tsync/sync/registry.hpp` instead.
#include "tsync/sync/registry.hpp"

namespace tsync::inline TSYNC_ABI::probe {
// The names moved to `tsync::sync`; the old qualified names still resolve for one release.
using namespace ::tsync::sync;
}  // namespace tsync::probe
