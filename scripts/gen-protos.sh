#!/usr/bin/env bash
# Regenerates the committed SwiftProtobuf code, one target per proto folder:
#   Protos/shoal/v1/*.proto -> Sources/ShoalProto/*.pb.swift
#   Protos/etcd/*.proto     -> Sources/EtcdProto/*.pb.swift  (our subset of etcd's API)
#
#   scripts/gen-protos.sh              # write into Sources/<target>
#   scripts/gen-protos.sh --out DIR    # write into DIR/<target> instead (check-generated.sh)
#
# Uses the system protoc (Debian protobuf-compiler) and protoc-gen-swift built
# from the package's own swift-protobuf dependency, so the generator always
# matches the runtime library. Never SwiftProtobuf's build plugin: it compiles
# a bundled protoc, twice. Set PROTOC_GEN_SWIFT to use a prebuilt generator.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

out="$root/Sources"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$(mkdir -p "$2" && cd "$2" && pwd); shift 2 ;;
    *) echo "usage: $0 [--out DIR]" >&2; exit 2 ;;
  esac
done

command -v protoc >/dev/null || { echo "gen-protos: protoc missing: run scripts/install-deps.sh" >&2; exit 1; }
# The swift-protobuf version pinned in Package.resolved ("" if not resolved yet).
pinned_version() {
  [ -f Package.resolved ] || return 0
  python3 -c 'import json,sys
pins = json.load(open("Package.resolved")).get("pins", [])
print(next((p["state"].get("version", "") for p in pins if p["identity"] == "swift-protobuf"), ""))'
}

if [ -z "${PROTOC_GEN_SWIFT:-}" ]; then
  command -v swift >/dev/null || PATH="/opt/swift/usr/bin:$PATH"
  PROTOC_GEN_SWIFT="$(swift build --show-bin-path)/protoc-gen-swift"
  want=$(pinned_version)
  have=$("$PROTOC_GEN_SWIFT" --version 2>/dev/null | awk '{print $2}' || true)
  # Build only when the generator is missing or not the pinned version: its
  # output depends on nothing else. (Asking SwiftPM for a different product
  # re-plans the build, and SwiftPM 6.3 then may reorder swift-protobuf's
  # trait -D flags and recompile SwiftProtobuf, swiftlang/swift-package-manager#10525.)
  if [ -z "$want" ] || [ "$have" != "$want" ]; then
    # A debug build of the dependency's product reuses the build directory's
    # SwiftProtobuf library (~1.5 min cold on 2 cores, seconds when warm).
    swift build --product protoc-gen-swift >&2
  fi
fi
[ -x "$PROTOC_GEN_SWIFT" ] || { echo "gen-protos: no executable at $PROTOC_GEN_SWIFT" >&2; exit 1; }

# The generated targets and the proto folder each one comes from.
targets=(ShoalProto:Protos/shoal/v1 EtcdProto:Protos/etcd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for entry in "${targets[@]}"; do
  target=${entry%%:*}
  protos=("${entry#*:}"/*.proto)
  mkdir -p "$tmp/$target"
  protoc \
    --plugin=protoc-gen-swift="$PROTOC_GEN_SWIFT" \
    --swift_out="$tmp/$target" \
    --swift_opt=Visibility=Public \
    --swift_opt=FileNaming=DropPath \
    -I Protos \
    "${protos[@]}"

  # Replace the generated files as a set: a removed .proto loses its .pb.swift.
  mkdir -p "$out/$target"
  find "$out/$target" -maxdepth 1 -name '*.pb.swift' -delete
  cp "$tmp/$target"/*.pb.swift "$out/$target"/
  echo "gen-protos: ${#protos[@]} protos -> ${out#"$root"/}/$target" >&2
done
