#pragma once
/// \file
/// Deprecated path, kept for one release: include `tsync/io/text.hpp` instead.
#include "tsync/io/text.hpp"
