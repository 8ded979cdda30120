#!/bin/sh
# Builds the client-frame fuzzer (proto/fuzz/fuzz_frame.c) with clang + libFuzzer + ASan +
# UBSan in build-fuzz/ and runs it for a bounded time. Besides the decoder's promises it
# checks the pair broker -> resolver: every accepted frame's data must make an APNs payload
# in the resolver's builder (resolver/pp_apns_payload.h).
#   FUZZ_SECONDS   how long to fuzz (default 60)
#   FUZZ_BUILD_DIR where to build (default build-fuzz/ in the source tree)
#   FUZZ_JOBS      parallel fuzzing processes (default 1; the machine has 2 cores)
# New inputs go to <build>/fuzz-corpus/, never into the committed seed corpus
# (proto/fuzz/corpus/). A crash leaves crash-* files in the build dir and exits non-zero.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
secs="${FUZZ_SECONDS:-60}"
jobs="${FUZZ_JOBS:-1}"
san="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DPP_FUZZ=ON -DCMAKE_C_FLAGS="$san" >/dev/null
cmake --build "$build" --target fuzz_frame -j2

mkdir -p "$build/fuzz-corpus"
cd "$build"
echo "fuzz_frame: ${secs}s, seeds in proto/fuzz/corpus"
exec "$build/proto/fuzz_frame" -max_total_time="$secs" -max_len=70000 -timeout=10 \
     -rss_limit_mb=2048 -jobs="$jobs" -workers="$jobs" -print_final_stats=1 \
     "$build/fuzz-corpus" "$root/proto/fuzz/corpus"
