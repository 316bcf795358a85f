#pragma once
/// \file
/// The simulator family: deterministic random numbers and distributions, clock
/// and link models with exact ground truth, scenarios and presets, and the
/// probe generator. (The probes CSV is in `tsync/io/probes_csv.hpp`.)
#include "tsync/sim/random.hpp"
#include "tsync/sim/clock_model.hpp"
#include "tsync/sim/link_model.hpp"
#include "tsync/sim/scenario.hpp"
#include "tsync/sim/generator.hpp"
