#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what is missing, checks the
# generated code is current, builds, runs the Swift tests, the Python tests (on the
# release binary), the bridge leak check and the index's concurrency tests under
# ThreadSanitizer.
# Prints one closing line: "shoal-tests: N passed, M failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
logs="$root/.build-test-logs"
mkdir -p "$logs"

bash scripts/install-deps.sh || { echo "shoal-tests: 0 passed, 1 failed"; exit 1; }

passed=0
failed=0
failures=()
step() {  # step NAME COMMAND... : runs it, keeps its output in $logs/NAME.log
  local name=$1; shift
  echo "== $name"
  local start=$SECONDS
  if "$@" 2>&1 | tee "$logs/$name.log"; then
    echo "== $name: ok ($((SECONDS - start)) s)"
    return 0
  fi
  echo "== $name: FAILED ($((SECONDS - start)) s)"
  failures+=("$name")
  return 1
}
count() {  # count NAME PASSED FAILED
  passed=$((passed + $2)); failed=$((failed + $3))
}

if step generated-code bash scripts/check-generated.sh; then count generated 1 0; else count generated 0 1; fi
step python-stubs bash scripts/gen-python-stubs.sh || count stubs 0 1

if step build swift build --build-tests; then
  step swift-tests swift test
  # Swift Testing: "Test run with N tests ... passed|failed ... with K issues"; XCTest: "Executed N tests, with K failures".
  read -r sp sf < <(python3 - "$logs/swift-tests.log" <<'PY'
import re, sys
t = open(sys.argv[1], errors="replace").read()
p = f = 0
for m in re.finditer(r"Test run with (\d+) tests? .*?(passed|failed)(?: after [\d.]+ seconds)?(?: with (\d+) issues?)?", t):
    n = int(m.group(1))
    if m.group(2) == "passed": p += n
    else:
        bad = len(set(re.findall(r"✘ Test (\S+?)\(", t)))
        f += bad; p += max(n - bad, 0)
for m in re.finditer(r"Executed (\d+) tests?, with (\d+) failures?", t):
    pass
x = re.findall(r"Executed (\d+) tests?, with (\d+) failures?", t)
if x:
    n, k = map(int, x[-1]); p += n - k; f += k
print(p, f)
PY
)
  count swift "$sp" "$sf"
  if ! grep -q "Test run with .* passed" "$logs/swift-tests.log" && [ "$sf" -eq 0 ]; then count swift 0 1; fi

  # The Python tests drive the release binary, the one Cluster/launch.sh runs: the
  # cluster tests move 100,000 points under load, which a debug build makes 5x slower.
  if step build-release bash -c 'swift build -c release --product shoal && swift build -c release --product shoal-test-helpers'; then
    bin=$(swift build -c release --show-bin-path)
    if step python-tests env SHOAL_BIN="$bin/shoal" SHOAL_TEST_FIGURES="$logs/figures.jsonl" PYTHONPATH="$root/Clients/python" \
        .venv/bin/python -m pytest -q --durations=12 Tests/python; then :; fi
  else
    echo "release build failed" >"$logs/python-tests.log"
  fi
  read -r pp pf < <(python3 - "$logs/python-tests.log" <<'PY'
import re, sys
t = open(sys.argv[1], errors="replace").read()
p = sum(int(x) for x in re.findall(r"(\d+) passed", t[-400:]))
f = sum(int(x) for x in re.findall(r"(\d+) (?:failed|error)", t[-400:]))
print(p, f if (p or f) else 1)
PY
)
  count python "$pp" "$pf"
else
  count build 0 1
fi

if step leakcheck bash scripts/leakcheck-bridge.sh; then count leak 1 0; else count leak 0 1; fi
if step tsan-index bash scripts/tsan-index.sh; then count tsan 1 0; else count tsan 0 1; fi

[ ${#failures[@]} -eq 0 ] || echo "failed steps: ${failures[*]} (logs in $logs)"
echo "shoal-tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ ${#failures[@]} -eq 0 ]
