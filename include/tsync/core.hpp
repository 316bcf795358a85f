#pragma once
/// \file
/// The core family: configuration and version, typed time, errors, expected,
/// 128-bit helpers and the two records the stages share (probe and sync samples).
#include "tsync/core/config.hpp"
#include "tsync/core/error.hpp"
#include "tsync/core/expected.hpp"
#include "tsync/core/int128.hpp"
#include "tsync/core/sync_sample.hpp"
#include "tsync/core/time.hpp"
#include "tsync/core/version.hpp"
