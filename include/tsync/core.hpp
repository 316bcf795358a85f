#pragma once
/// \file
/// Aggregator for tsync/core: typed time, errors, expected, 128-bit helpers, shared data.
#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/int128.hpp"
#include "tsync/core/sync_sample.hpp"
#include "tsync/core/text_error.hpp"
#include "tsync/core/time.hpp"
#include "tsync/core/version.hpp"
