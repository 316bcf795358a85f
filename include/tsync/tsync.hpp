#pragma once
/// \file
/// Umbrella header: the pure families of tsync, which need nothing beyond the
/// C++20 standard library: core, KVM math, correction, estimators, simulator,
/// formats (io) and the probe exchange, plus the clock concept and the
/// simulated and adjusted clocks.
///
/// The OS edges are included explicitly by the programs that use them:
/// `tsync/clock.hpp` (POSIX, TSC and trace clocks), `tsync/transport.hpp`
/// (sockets, vsock, FIFOs), `tsync/kvm/debugfs.hpp` and `tsync/sync.hpp` (the
/// session). Optional parts with their own dependencies:
/// `tsync/estimate/regression_eigen.hpp` (Eigen) and `tsync/accuracy.hpp`.
#include "tsync/core.hpp"
#include "tsync/kvm.hpp"
#include "tsync/correct.hpp"
#include "tsync/estimate.hpp"
#include "tsync/sim.hpp"
#include "tsync/io.hpp"
#include "tsync/probe.hpp"
#include "tsync/clock/adjusted_clock.hpp"
#include "tsync/clock/clock_source.hpp"
#include "tsync/clock/simulated_clock.hpp"
