#pragma once
/// \file
/// Umbrella header: the pure arithmetic families of tsync, which need nothing
/// beyond the C++20 standard library: core (typed time, errors, expected),
/// KVM TSC math and TSC<->ns, correction, estimators, the simulator, and the
/// clock concept with the simulated and adjusted clocks.
///
/// Included by name, so that a program pays only for what it uses:
/// * `tsync/io.hpp`: text and binary formats (CSV tables and probes, model JSON,
///   scenario text, trace-cmd options, kvm_write_tsc_offset records);
/// * `tsync/probe.hpp`: the wire protocol and the probe exchange;
/// * `tsync/kvm/batch.hpp`: span conversions with run-time selected vector kernels;
/// * the OS edges `tsync/clock.hpp` (POSIX, TSC and trace clocks),
///   `tsync/transport.hpp` (sockets, vsock, FIFOs), `tsync/kvm/debugfs.hpp` and
///   `tsync/sync.hpp` (protocol selection and the session);
/// * optional parts with their own dependencies:
///   `tsync/estimate/regression_eigen.hpp` (Eigen) and `tsync/accuracy.hpp`.
#include "tsync/core.hpp"
#include "tsync/kvm/clock_ns.hpp"
#include "tsync/kvm/frequency.hpp"
#include "tsync/kvm/tsc.hpp"
#include "tsync/correct.hpp"
#include "tsync/estimate.hpp"
#include "tsync/sim.hpp"
#include "tsync/clock/adjusted_clock.hpp"
#include "tsync/clock/clock_source.hpp"
#include "tsync/clock/simulated_clock.hpp"
