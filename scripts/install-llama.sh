#!/usr/bin/env bash
# Build llama-cpp-python 0.3.36 once (portable CPU build, ~5-9 minutes), cache the wheel outside git, install it.
set -euo pipefail
PY="${1:-.venv/bin/python}"
VERSION=0.3.36
CACHE="${KGRAG_MODEL_SERVER__CACHE_DIR:-$HOME/.cache/kgrag}/wheels"
mkdir -p "$CACHE"
wheel=$(ls "$CACHE"/llama_cpp_python-"$VERSION"-*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$wheel" ]; then
  echo "building llama-cpp-python $VERSION (cached in $CACHE; takes several minutes once)"
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
    "$PY" -m pip wheel --no-deps -w "$CACHE" "llama-cpp-python==$VERSION"
  wheel=$(ls "$CACHE"/llama_cpp_python-"$VERSION"-*.whl | head -n 1)
fi
"$PY" -m pip install -q -c constraints.txt "${wheel}[server]"
