#!/usr/bin/env bash
# The default real model (Gemma 3 270M GGUF, 253 MB) to the GPU machine, which reaches no
# network and takes at most 64 MiB of carried files per call: split here, gathered there piece by
# piece (one call each, on the same warm machine), then measured there.
#   here:   bash tools/gpu_model_pieces.sh split        .model-pieces/1 .. N (50 MB each, git-ignored)
#   device: bash tools/gpu_model_pieces.sh gather       carry [".model-pieces/K"], K = 1 .. N in turn;
#                                                       the last one checks the whole file's sha256
#   device: bash tools/gpu_model_pieces.sh measure      (carry [".deps"]; after gpu_round.sh built
#           build-gpu) the GPU against the CPU specification on real text (eval --device cuda
#           --reference cpu, FP8 and BF16 KV), the GPU's perplexity against the 16-bit weights,
#           and decode/prefill speed of the real model
set -euo pipefail
cd "$(dirname "$0")/.."
pieces=.model-pieces
store=/tmp/fp4llm-model
case "${1:-}" in
  split)
    model=$(bash tools/default_model.sh)
    rm -rf "$pieces" && mkdir -p "$pieces/all"
    split -b 50000000 -d -a 1 "$model" "$pieces/all/part"
    n=0
    for f in "$pieces"/all/part*; do n=$((n + 1)); mkdir -p "$pieces/$n" && mv "$f" "$pieces/$n/part"; done
    rmdir "$pieces/all"
    sha256sum "$model" | cut -d' ' -f1 > "$pieces/1/sha256"
    echo "$n" > "$pieces/1/count"
    basename "$model" > "$pieces/1/name"
    echo "$n pieces under $pieces; carry \"$pieces/1\" .. \"$pieces/$n\", one per call"
    ;;
  gather)
    mkdir -p "$store"
    for d in "$pieces"/*/; do
      k=$(basename "$d")
      cp "$d/part" "$store/part.$k"
      for meta in sha256 count name; do [ -f "$d/$meta" ] && cp "$d/$meta" "$store/$meta"; done
      echo "piece $k stored ($(stat -c %s "$d/part") bytes)"
    done
    [ -f "$store/count" ] || { echo "waiting for piece 1 (it carries the count)"; exit 0; }
    n=$(cat "$store/count")
    for k in $(seq 1 "$n"); do [ -f "$store/part.$k" ] || { echo "still missing piece $k of $n"; exit 0; }; done
    out="$store/$(cat "$store/name")"
    for k in $(seq 1 "$n"); do cat "$store/part.$k"; done > "$out"
    if [ "$(sha256sum "$out" | cut -d' ' -f1)" = "$(cat "$store/sha256")" ]; then echo "complete: $out"; else echo "sha256 MISMATCH: $out"; exit 1; fi
    ;;
  measure)
    OUT=${OUT:-build-gpu/logs}
    mkdir -p "$OUT"
    model=$(ls "$store"/*.gguf 2>/dev/null | head -1)
    [ -n "$model" ] || { echo "no model gathered under $store"; exit 1; }
    tok=$(ls -d .gpu-shared/testdata/tokenizers/gemma3 2>/dev/null || true)
    text=tests/data/public_domain_text.txt
    for kv in fp8 bf16; do
      ./build-gpu/fp4llm eval "$model" --text "$text" ${tok:+--tokenizer "$tok"} --context 128 --device cuda \
        --reference cpu --kv-cache-dtype "$kv" --json > "$OUT/eval-gpu-vs-cpu-$kv.json" 2> "$OUT/eval-gpu-vs-cpu-$kv.err" &&
        echo "GPU against CPU, $kv KV: $(cat "$OUT/eval-gpu-vs-cpu-$kv.json")" || echo "eval $kv FAILED: $(tail -2 "$OUT/eval-gpu-vs-cpu-$kv.err")"
    done
    ./build-gpu/fp4llm eval "$model" --text "$text" ${tok:+--tokenizer "$tok"} --context 128 --device cuda --json \
      > "$OUT/eval-gpu-vs-bf16.json" 2> "$OUT/eval-gpu-vs-bf16.err" &&
      echo "GPU against 16-bit weights: $(cat "$OUT/eval-gpu-vs-bf16.json")" || echo "eval against bf16 FAILED"
    ./build-gpu/fp4llm bench "$model" --batch 1,16 --quiet --json "$OUT/bench-gemma3-270m.json" > "$OUT/bench-gemma3-270m.txt" 2>&1 &&
      tail -8 "$OUT/bench-gemma3-270m.txt" || echo "bench FAILED (see $OUT/bench-gemma3-270m.txt)"
    ;;
  *)
    echo "usage: $0 split|gather|measure" >&2
    exit 2
    ;;
esac
