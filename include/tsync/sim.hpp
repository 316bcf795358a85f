#pragma once
/// \file
/// The simulator family: deterministic random numbers and distributions, clock
/// and link models with exact ground truth, scenarios and presets, the probe
/// generator, and the probes CSV format.
#include "tsync/sim/random.hpp"
#include "tsync/sim/clock_model.hpp"
#include "tsync/sim/link_model.hpp"
#include "tsync/sim/scenario.hpp"
#include "tsync/sim/generator.hpp"
#include "tsync/sim/probe_csv.hpp"
