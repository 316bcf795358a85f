#pragma once
/// \file
/// The estimator family: per-burst and whole-trace offset/drift estimators, the
/// piecewise model they return, and the registry. The Eigen-based regression is
/// not included: see `tsync/estimate/regression_eigen.hpp`.
#include "tsync/estimate/burst.hpp"
#include "tsync/estimate/envelope.hpp"
#include "tsync/estimate/hull.hpp"
#include "tsync/estimate/kalman.hpp"
#include "tsync/estimate/model.hpp"
#include "tsync/estimate/per_burst.hpp"
#include "tsync/estimate/prepare.hpp"
#include "tsync/estimate/registry.hpp"
#include "tsync/estimate/trace.hpp"
#include "tsync/estimate/types.hpp"
