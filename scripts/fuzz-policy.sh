#!/usr/bin/env bash
# Fuzzes Warden's Cedar parser and evaluator with libFuzzer for a bounded time (default 60 s), seeded
# from Cedar's integration-test policies. A crash, a hang (> 5 s) or an error positioned outside its input
# fails the run; the reproducing input is kept under .build/fuzz/artifacts/.
#   scripts/fuzz-policy.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
work=.build/fuzz
rm -rf "$work/seeds" && mkdir -p "$work/seeds" "$work/corpus" "$work/artifacts"

echo "== fuzz: build (-sanitize=fuzzer)" >&2
swift build --package-path Fuzz -c release --product WardenPolicyFuzz \
    -Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library >&2

# Seeds: every policy of Cedar's integration tests (read in place, unpacked into the scratch directory).
shared="${WARDEN_SHARED_DIR:-}"
for candidate in "$shared" ../shared /work/shared; do
    if [ -n "$candidate" ] && [ -f "$candidate/conformance/cedar/corpus-tests.tar.gz" ]; then shared="$candidate"; break; fi
done
if [ -f "$shared/conformance/cedar/corpus-tests.tar.gz" ]; then
    tar -xzf "$shared/conformance/cedar/corpus-tests.tar.gz" -C "$work/seeds" --wildcards '*.cedar'
    find "$shared/conformance/cedar/tests" -name '*.cedar' -exec cp {} "$work/seeds/" \;
else
    echo "fuzz: Cedar's integration tests not found (set WARDEN_SHARED_DIR); starting from examples only" >&2
fi
find examples -name '*.cedar' -exec cp {} "$work/seeds/" \; 2>/dev/null || true

echo "== fuzz: ${seconds}s" >&2
status=0
Fuzz/.build/release/WardenPolicyFuzz "$work/corpus" "$work/seeds" -dict=Fuzz/cedar.dict \
    -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" >"$work/log" 2>&1 || status=$?
grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|Done [0-9]+ runs' "$work/log" >&2 || true
if [ "$status" -ne 0 ]; then
    grep -v '^0x' "$work/log" | grep -E -A20 'Fatal error|ERROR|crash|timeout' | head -40 >&2
    echo "fuzz: FAILED (exit $status); reproducer: $(ls -t "$work"/artifacts/* 2>/dev/null | head -1)" >&2
    exit 1
fi
echo "fuzz: no crash, hang or misplaced error in ${seconds}s" >&2
