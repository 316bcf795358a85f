#pragma once
/// \file
/// Aggregator for tsync/estimate: per-burst and whole-trace offset/drift
/// estimators, the piecewise model they return (with JSON), and the registry.
/// The Eigen-based regression lives in tsync/estimate/regression_eigen.hpp and
/// joins the registry when TSYNC_HAVE_EIGEN is defined.
#include "tsync/estimate/burst.hpp"
#include "tsync/estimate/envelope.hpp"
#include "tsync/estimate/hull.hpp"
#include "tsync/estimate/json.hpp"
#include "tsync/estimate/kalman.hpp"
#include "tsync/estimate/model.hpp"
#include "tsync/estimate/per_burst.hpp"
#include "tsync/estimate/prepare.hpp"
#include "tsync/estimate/registry.hpp"
#include "tsync/estimate/trace.hpp"
#include "tsync/estimate/types.hpp"
