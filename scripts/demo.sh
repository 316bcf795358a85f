#!/usr/bin/env bash
# Build the tsync tool (release preset) and run the main demo.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target tsync_cli
./build/release/examples/tsync --help
