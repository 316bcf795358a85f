#pragma once
/// \file
/// Deprecated path, kept for one release: include `tsync/io/table_csv.hpp` instead.
#include "tsync/io/table_csv.hpp"

namespace tsync::inline TSYNC_ABI::correct {
// The names moved to `tsync::io`; the old qualified names still resolve for one release.
using namespace ::tsync::io;
}  // namespace tsync::correct
