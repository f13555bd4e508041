#!/usr/bin/env bash
# The whole test suite: format lint, build, and every test (real kernel, real bubblewrap, real cgroups).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

echo "== swift format lint" >&2
swift format lint --strict --recursive Package.swift Sources Tests Fuzz
echo "== build" >&2
swift build --build-tests
# A real PostgreSQL on loopback for the audit store's tests, stopped when this script exits.
source scripts/test-postgres.sh
echo "== tests" >&2
# The red team's model-agent test reads its stand-in key from here (tests must not change the environment
# while other suites start processes).
export WARDEN_TEST_MODEL_KEY=test-key
swift test --skip-build "$@"
# The Cedar parser and evaluator under libFuzzer for a bounded time (WARDEN_FUZZ_SECONDS=0 skips it).
if [ "${WARDEN_FUZZ_SECONDS:-60}" -gt 0 ] && [ $# -eq 0 ]; then
    scripts/fuzz-policy.sh "${WARDEN_FUZZ_SECONDS:-60}"
fi
