#!/usr/bin/env bash
# Leak check of the gRPC bridge: 10,000 calls (ok, failed, deadline-exceeded,
# cancelled) under AddressSanitizer's LeakSanitizer, in a build of its own
# (.build-asan). Fails if any leak is reported from the bridge or GRPCBridge, or if
# any bridge object is alive after shutdown. First proves the checker works: a run
# that leaks one channel on purpose must be caught.
#
# (valgrind 3.19, Debian's, cannot read the Swift toolchain's DWARF 5, and crashes on
# the program when built with DWARF 4; LeakSanitizer is the tool here.)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scratch="$root/.build-asan"
calls=${CALLS:-10000}

echo "leakcheck: building shoal-test-helpers with -sanitize=address"
swift build --scratch-path "$scratch" --product shoal-test-helpers --sanitize=address >"$scratch.log" 2>&1 || {
  tail -30 "$scratch.log"; exit 1; }
bin=$(swift build --scratch-path "$scratch" --show-bin-path)/shoal-test-helpers
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1

ours='sg_|shoal_bridge|10GRPCBridge|GRPCBridge\.|ServerCall|ClientCall'
report() {  # report LOG -> prints leak records with a frame of ours; returns 1 if any
  python3 - "$1" "$ours" <<'PY'
import re, sys
text = open(sys.argv[1], errors="replace").read()
records = re.split(r"\n(?=(?:Direct|Indirect) leak of )", text)
bad = [r for r in records if re.match(r"(Direct|Indirect) leak of ", r) and re.search(sys.argv[2], r)]
others = sum(1 for r in records if re.match(r"(Direct|Indirect) leak of ", r)) - len(bad)
for r in bad:
    print(r[:3000])
print(f"leakcheck: {len(bad)} leak record(s) from the bridge, {others} from elsewhere")
sys.exit(1 if bad else 0)
PY
}

# 1. The checker must catch a planted leak.
log=$(mktemp)
"$bin" bridge-leakcheck --calls 100 --leak-one >"$log" 2>&1 || true
if report "$log" >/dev/null; then
  echo "leakcheck: FAILED to detect the planted leak; the checker is blind"; cat "$log"; exit 1
fi
echo "leakcheck: planted leak detected (checker works)"

# 2. The real run.
set +e
"$bin" bridge-leakcheck --calls "$calls" >"$log" 2>&1
status=$?
set -e
grep -E "^(outcomes|live after)" "$log" || true
report "$log" || { echo "leakcheck: FAILED"; exit 1; }
[ $status -eq 0 ] || { echo "leakcheck: FAILED (exit $status)"; tail -40 "$log"; exit 1; }
rm -f "$log"
echo "leakcheck: 1 passed, 0 failed"
