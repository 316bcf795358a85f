// The Eigen-based `regression` estimator, registered when the tool is built
// with Eigen (CMake defines TSYNC_HAVE_EIGEN for targets linking tsync::eigen).
#if defined(TSYNC_HAVE_EIGEN) && TSYNC_HAVE_EIGEN
#include "tsync/estimate/regression_eigen.hpp"

namespace {
const bool regression_registered =
    tsync::estimate::register_regression(tsync::estimate::default_registry()).has_value();
}  // namespace
#endif
