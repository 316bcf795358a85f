#pragma once
/// \file
/// The accuracy family, for people benchmarking estimators: the harness that
/// runs estimators on simulated scenarios against exact truth, and the shoot-out.
#include "tsync/accuracy/estimate_adapter.hpp"
#include "tsync/accuracy/harness.hpp"
#include "tsync/accuracy/shootout.hpp"
