#pragma once
/// \file
/// Library version.
#define TSYNC_VERSION_MAJOR 0
#define TSYNC_VERSION_MINOR 1
#define TSYNC_VERSION_PATCH 0
#define TSYNC_VERSION_STRING "0.1.0"
