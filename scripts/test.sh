#!/usr/bin/env bash
# The whole test suite: format lint, build, and every test (real kernel, real bubblewrap, real cgroups).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

echo "== swift format lint" >&2
swift format lint --strict --recursive Package.swift Sources Tests
echo "== build" >&2
swift build --build-tests
echo "== tests" >&2
swift test --skip-build "$@"
