#pragma once
/// \file
/// Deprecated path, kept for one release: include `tsync/sync/session.hpp` instead.
#include "tsync/sync/session.hpp"

namespace tsync::inline TSYNC_ABI::probe {
// The names moved to `tsync::sync`; the old qualified names still resolve for one release.
using namespace ::tsync::sync;
}  // namespace tsync::probe
