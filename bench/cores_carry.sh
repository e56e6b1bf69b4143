#!/usr/bin/env bash
# The Python packages bench_cores.py needs on a machine that has no package registry and a
# Python 3.12 with numpy, pandas, pyarrow, pillow, scikit-learn, matplotlib, psutil, click,
# rich, fsspec, pyyaml, requests, msgpack, protobuf, aiohttp... but not Ray (the device image of
# bench/README.md's section "Beyond 2 cores"), made here into one folder that travels with the
# working tree (64 MiB in all).
#
#   bench/cores_carry.sh [DIR]      # default: .whl in the repository's root, which git ignores
#
# What is missing there: ray and what its core needs (jsonschema and its three), and parallelrun's
# pydantic (with its three); uv, parallelrun's other missing dependency, only builds job
# environments, which the benchmarks do not use. Ray's wheel is 79 MB, over the limit by itself:
# it goes as a tar.xz of the installed tree, less what the benchmarks never load (the Java jar,
# the dashboard's web client, RLlib, Serve, Ray LLM): ~24 MB.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$(realpath -m "${1:-$ROOT/.whl}")"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
RAY_VERSION=2.60.0
# the versions this repository's tests run with (make setup), as cp312 manylinux wheels
SMALL=(jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0
       rpds-py==2026.9.1 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0
       typing-inspection==0.4.5)
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
           --platform manylinux1_x86_64)

if [ "$DEST" = "$ROOT/.whl" ] && ! grep -qx '/.whl/' "$ROOT/.git/info/exclude" 2>/dev/null; then
  echo /.whl/ >> "$ROOT/.git/info/exclude"      # the carry is never committed
fi
mkdir -p "$DEST"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${PLATFORMS[@]}" -d "$DEST" "${SMALL[@]}"

if [ ! -f "$DEST/ray-$RAY_VERSION-cp312-stripped.tar.xz" ]; then
  work="$(mktemp -d /tmp/cores_carry.XXXXXX)"
  trap 'rm -rf "$work"' EXIT
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d "$work" "ray==$RAY_VERSION"
  mkdir "$work/tree"
  (cd "$work/tree" && unzip -q "$work"/ray-*.whl &&
   rm -rf ray/jars ray/dashboard/client/build ray/rllib ray/serve ray/llm &&
   tar cf - . | xz -9 -T0 > "$DEST/ray-$RAY_VERSION-cp312-stripped.tar.xz.tmp")
  mv "$DEST/ray-$RAY_VERSION-cp312-stripped.tar.xz.tmp" "$DEST/ray-$RAY_VERSION-cp312-stripped.tar.xz"
fi
ls -l "$DEST"
du -sh "$DEST"
