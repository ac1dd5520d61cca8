#!/usr/bin/env bash
# The index's concurrency tests (inserts, deletes, vacuum and searches at once) under
# ThreadSanitizer, in a build of their own (.build-tsan). Any report fails the run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scratch="$root/.build-tsan"
echo "tsan: building the tests with -sanitize=thread"
swift build --scratch-path "$scratch" --build-tests --sanitize=thread >"$scratch.log" 2>&1 || { tail -30 "$scratch.log"; exit 1; }
TSAN_OPTIONS="halt_on_error=1:abort_on_error=1" \
  swift test --scratch-path "$scratch" --sanitize=thread --skip-build --filter VectorIndexTests
