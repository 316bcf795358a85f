#pragma once
/// \file
/// Configuration of the whole library and the inline ABI namespace.
///
/// Every tsync name lives in `tsync::TSYNC_ABI`, an inline namespace whose name
/// is made from the version and from every configuration macro that changes the
/// body of an inline function. Two translation units built with different
/// configurations therefore get different symbols instead of silently
/// violating the one-definition rule. The configuration macros are:
///
/// * `TSYNC_CHECKED` (0 or 1; default 1 unless `NDEBUG` is defined): checked
///   `expected::operator*` / `operator->` (a bad access aborts with a message
///   instead of being undefined behaviour).
///
/// No other macro changes an inline body: optional parts (the Eigen estimator,
/// the trace-cmd event reader) are separate headers that a program includes
/// explicitly, and vector kernels are selected at run time.

#include "tsync/core/version.hpp"

#ifndef TSYNC_CHECKED
#ifdef NDEBUG
#define TSYNC_CHECKED 0
#else
#define TSYNC_CHECKED 1
#endif
#endif

#define TSYNC_ABI_PASTE_(ma, mi, ck) abi_v##ma##_##mi##_c##ck
#define TSYNC_ABI_PASTE(ma, mi, ck) TSYNC_ABI_PASTE_(ma, mi, ck)
/// The inline ABI namespace, e.g. `abi_v0_1_c1`.
#define TSYNC_ABI TSYNC_ABI_PASTE(TSYNC_VERSION_MAJOR, TSYNC_VERSION_MINOR, TSYNC_CHECKED)
