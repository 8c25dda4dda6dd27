#!/usr/bin/env bash
# Device calls after tools/gpu_round.sh on the same warm machine (build-gpu is kept): the kernel
# knobs that are off by default, each checked and benched against the default in the same call,
# so that a knob is judged by a same-machine A/B (docs/PERFORMANCE.md's knob table). Prints one
# line per item; JSON and logs under $OUT. Its parts, each under the 10-minute limit of a call
# (items that would start past about 9 minutes are reported as skipped):
#   tools/gpu_variants.sh tests      the knob variants' GPU tests, whole models GPU vs CPU with
#                                    prefill sliced every 48 rows
#   tools/gpu_variants.sh probes     the GEMV micro-benchmark, where prefill's time goes, FP8
#                                    prefill against BF16, 32k FP8 attention 1-3 ahead, memcheck
#                                    of the GEMV tests
#   tools/gpu_variants.sh bench      the same-call A/B benches of the dense shapes
#   tools/gpu_variants.sh bench-moe  the same for Qwen3-30B-A3B, then Gemma3-27B's memory at 4k
#                                    with the embedding table on the GPU and in host memory
#   tools/gpu_variants.sh first      the knobs not yet measured, each checked by its tests first
#                                    and then benched against the default in the same call (a
#                                    wrong kernel still reports tok/s): after the baselines, the
#                                    expert groups of prefill on warpgroup MMAs, the decode
#                                    attention's splits as clusters, then the stage profile of a
#                                    batch-1 step; a bare machine builds only what it needs
#                                    (about 2 minutes)
#   tools/gpu_variants.sh prefill    one 2,048-token prompt of three models with the defaults,
#                                    the mask on every tile, 2 and 4 query heads per flash block,
#                                    the first flash kernel, each with its stages
#   tools/gpu_variants.sh core       when device time is short, the most needed in one call: the
#                                    default paths' GPU tests (GEMV, MoE, attention) and the knob
#                                    tests, the 2,048-token prefill A/B (defaults, the mask on
#                                    every tile, 4 and 2 heads a block), batch 1/16 of Qwen3-8B and
#                                    Qwen3-30B-A3B, batch 64 with the wgmma GEMV's clusters, the
#                                    phase-boundary probe, 32k attention FP8 (1 and 2 blocks
#                                    ahead) against BF16, then the MoE prefill on warpgroup MMAs
#                                    and the attention clusters
#   tools/gpu_variants.sh defaults   the eighteenth session's defaults: tests (and the former paths'),
#                                    whole models against the CPU, batch 1/16/64, the attention
#                                    merge, clusters and 8 warps against them (batch 1/16, 32k)
#   tools/gpu_variants.sh defaults2  prompts (2 flash heads on wgmma), MoE with every kernel
#                                    launched early, the attention's cost at 16 and 1,024 prompt
#                                    tokens, the new kernels under memcheck and racecheck
#   tools/gpu_variants.sh last       with about 4 minutes left: whole models against the CPU, the
#                                    attention tests, batch 1 against the former attention merge
#   tools/gpu_variants.sh keyrows    the decode attention with the keys as the MMA's rows: its
#                                    tests and whole models, then against the defaults at batch
#                                    1/16, 32k (FP8 and BF16, with clusters of 2 and 4) and 1,024
#                                    prompt tokens
#   tools/gpu_variants.sh keyrows2   the key-rows kernel as the default: the attention tests (and
#                                    the former kernel's), whole models, batch 1/16/64 of three
#                                    models, 32k FP8 and BF16, clusters of 2 at 32k
#   tools/gpu_variants.sh splits     with about 3 minutes: the attention tests under memcheck and
#                                    racecheck (the key-rows kernel, 128 splits), then 32k with
#                                    the splits aimed at 2, 8 and 4 blocks a SM
#   tools/gpu_variants.sh next       the nineteenth session's last blind work: the split merge in
#                                    two passes (default path), only the products launched early,
#                                    the wgmma GEMV's weight ring, the rope in the key-rows
#                                    attention: their tests and whole models,
#                                    then 32k with the splits aimed at 2, 4 and 8 blocks a SM, the
#                                    products' A/B at batch 1/16 and the ring's at batch 64
#   tools/gpu_variants.sh merge      the split merge by rows (default) against the former two:
#                                    attention tests, 32k FP8 and BF16 with each merge and with
#                                    splits aimed at 4 and 8 blocks a SM, batch 1/16 of Qwen3-8B,
#                                    whole models with 32-key splits, then Nsight Compute over
#                                    the 32k key-rows attention
#   tools/gpu_variants.sh merge2     the merge by rows under memcheck and racecheck (the splits
#                                    tests), 32k FP8 with splits aimed at 1 and 3 blocks a SM,
#                                    Qwen3-30B-A3B and Gemma3-27B with the defaults, then Nsight
#                                    Compute over the 32k key-rows attention
#   tools/gpu_variants.sh attn-ahead the key-rows attention 2 and 3 FP8 cache blocks ahead: its
#                                    tests, 32k FP8 (and BF16 for the ratio), batch 1/16 of
#                                    Qwen3-8B and Qwen3-30B-A3B, 128-key splits at batch 1
#   tools/gpu_variants.sh layout     the cache blocks in head-major order (FP4LLM_KV_LAYOUT): the
#                                    tests of every kernel that writes or reads the cache under
#                                    it, 32k FP8 and BF16 in both orders, batch 1/16 of Qwen3-8B
#                                    and Qwen3-30B-A3B, a 2,048-token prompt (in both orders,
#                                    with the flash PV on warpgroup MMAs after its tests, and with
#                                    dequantized slices of 2,048 rows), whole models
#   tools/gpu_variants.sh early      the decode attention's first cache blocks requested before
#                                    its wait for the rope kernel (FP4LLM_ATTN_EARLY_BLOCKS): the
#                                    attention tests (one races the rope kernel), whole models,
#                                    then batch 1/16 of Qwen3-30B-A3B and Qwen3-8B, 32k FP8 and
#                                    BF16, racecheck and memcheck of the new test, Gemma3-27B b1,
#                                    Qwen3-30B-A3B after 1,024 prompt tokens, each against the
#                                    defaults in the same call
#   tools/gpu_variants.sh roles      which parts of a Qwen3-30B-A3B step gain or lose when launched
#                                    early (FP4LLM_PDL_ROLES): the attention tests, whole models
#                                    with every role early,
#                                    then batch 1/16 with the defaults, each role alone, the norm
#                                    kernels with and without the products early, two FP8 cache
#                                    blocks ahead (Qwen3-8B too), the defaults again. Ran at
#                                    e5ea9de, when a list added its roles to the defaults (none for
#                                    MoE then); a list is now the exact set, against rope,o_proj
#   tools/gpu_variants.sh moe2       Qwen3-30B-A3B batch 1/16/64 with the defaults and (ran with
#                                    both off by default; now the former paths) with
#                                    FP4LLM_GEMV_SKIP_PADDED_TOKENS=0 (after its tests), batch 64
#                                    with FP4LLM_EXPERTS_DIRECT=0 with and without it, batch 1/16
#                                    with FP4LLM_PDL_TRIGGER=after_wait (after its tests: under the
#                                    defaults, with the qkv early, with every kernel early against
#                                    every kernel early), 4 and 2 chunks a warp, the defaults again
#   tools/gpu_variants.sh roles2     whole models with every FP4LLM_PDL_ROLES role and with none,
#                                    then Qwen3-30B-A3B batch 1/16/64 with and without the MoE block
#                                    early, Qwen3-8B batch 1/16 with each role left out and with the
#                                    trigger after the wait, Gemma3-27B batch 1 without the qkv
#                                    early, Qwen3-8B's defaults again
#   tools/gpu_variants.sh targets    what gpu_round.sh does not measure of the targets: the 32k
#                                    ratio in the replayed graph (Qwen3-8B at 32k keys with FP8
#                                    and BF16 caches, each with and without the attention kernel,
#                                    FP4LLM_OMIT_STAGE=attention_only: the attention's cost on the
#                                    step's critical path is the difference of step times, where
#                                    the eager profile serialises it), then the memory at 4k
#                                    context of Qwen3-30B-A3B (issue 6) and Gemma3-27B
#   tools/gpu_variants.sh profile2   Nsight Compute over the key-rows decode attention (32k keys
#                                    and Qwen3-30B-A3B's short context: per-instruction stalls)
#                                    and the batch-64 wgmma products with and without the ring
#   tools/gpu_variants.sh wide       where batch 64 goes: the step's stages, then Nsight Compute
#                                    over one layer's four warpgroup-MMA products (time, DRAM and
#                                    L2 bytes, issue, stalls) and the gate/up product's SASS view
#   tools/gpu_variants.sh trace      the tests of FP4LLM_NORMED_MIN_CHUNKS=4,
#                                    FP4LLM_GEMV_BLOCK_WARPS=16 and FP4LLM_EXPERTS_SPLITS=wave,
#                                    then kernel by kernel (`fp4llm bench --trace`, CUPTI):
#                                    Qwen3-30B-A3B batch 1 with the
#                                    defaults, its normalising qkv in 2 and 4 times the blocks
#                                    (FP4LLM_NORMED_MIN_CHUNKS=8, 4), the experts' K split to fill
#                                    a wave (FP4LLM_EXPERTS_SPLITS=wave), the norm and combine kernels
#                                    instead (FP4LLM_NORM_PROLOGUE=0), the qkv early letting the
#                                    next kernel in after its wait; Qwen3-8B batch 1 with the
#                                    defaults; both with 16-warp blocks for long K
#                                    (FP4LLM_GEMV_BLOCK_WARPS=16); Qwen3-8B with the norms in the
#                                    products (FP4LLM_NORM_PROLOGUE=1); batch 16 of both defaults.
#                                    Each variant is also benched untraced (the trace costs about
#                                    1 us a kernel outside the graph). Last, Qwen3-8B's 2,048-token
#                                    prefill kernel by kernel
#   tools/gpu_variants.sh s24        the GEMV tests under the new defaults (16-warp blocks for
#                                    long K, normalising GEMVs at 8 chunks a warp) and the knob
#                                    tests of the former paths and the new variants, then
#                                    same-call benches: Qwen3-8B, Qwen3-30B-A3B and Gemma3-27B
#                                    against 8-warp blocks; a 2,048-token Qwen3-8B prompt with the
#                                    gate/up GEMM writing BF16 (FP4LLM_PREFILL_GATED_BF16=1), twice
#                                    each; 16-warp blocks for 9-16 rows (=16-nt2). (It also ran
#                                    16-warp blocks everywhere, =16-all, since removed.)
#   tools/gpu_variants.sh ahead      FP4LLM_L2_AHEAD: the GEMV tests (AskingL2ForTheWeightsChangesNoBit)
#                                    and the float32 gate/up's knob test, then kernel traces of
#                                    Qwen3-30B-A3B batch 1 with the experts' down asking L2 for the
#                                    next qkv (=qkv), o_proj for its own (=o_proj), the routed
#                                    gate/up for its experts' down weights (=down) and for its
#                                    own once routed (=gate_up), all four,
#                                    against the defaults; Qwen3-8B batch 1 with =o_proj; last the whole
#                                    models' bit-for-bit test of the scheduling knobs
#   tools/gpu_variants.sh s25        the twenty-fifth session's flash work, both off by default:
#                                    the grid with the head groups fastest over tiles sorted
#                                    longest first (FP4LLM_FLASH_LONGEST_FIRST=1) and the staggered
#                                    kernel (FP4LLM_FLASH_STAGGER=1): the attention tests with each,
#                                    then a 2,048-token prompt of Qwen3-8B (twice each) and
#                                    Gemma3-27B against the defaults; then the GEMV tests and the
#                                    twenty-fourth session's untried ones, and Qwen3-30B-A3B batch 1
#                                    with each FP4LLM_L2_AHEAD part against the defaults, then
#                                    Nsight Compute's stalls of the default flash kernel, while
#                                    time lasts
#   tools/gpu_variants.sh s25-short  with about 5 minutes: the flash tests of the defaults, the
#                                    longest tiles first and the staggered kernel, then one 2,048-token
#                                    Qwen3-8B prompt with each
#   tools/gpu_variants.sh s26        when the device is scarce, the twenty-fifth and twenty-sixth
#                                    sessions' work in one call: the deferred norm's GEMV tests and
#                                    Qwen3 against the CPU with it, the flash knobs' tests, in
#                                    parallel; then Qwen3-8B batch 1/16 with and without the deferred
#                                    norm, the 2,048-token prompt with the defaults, the longest
#                                    tiles first and the staggered kernel, Qwen3-30B-A3B batch 1
#                                    with every FP4LLM_L2_AHEAD part, and the A/Bs again
#                                    (ran before the deferred norm and the longest tiles first
#                                    became the defaults)
#   tools/gpu_variants.sh s26-defaults  the deferred norm and the longest tiles first as defaults:
#                                    the GEMV, MoE and attention tests, whole models against the
#                                    CPU (and with the norm kernels), in parallel; then batch
#                                    1/16/64 of Qwen3-8B and Qwen3-30B-A3B against the former
#                                    paths, and the 2,048-token prompts of Qwen3-8B and Gemma3-27B
#   tools/gpu_variants.sh s27        after the deferred norm became the default: its kernels under
#                                    memcheck and racecheck, the kernel traces of Qwen3-8B and
#                                    Qwen3-30B-A3B at batch 1 (where a layer's time goes now), each
#                                    FP4LLM_L2_AHEAD part on Qwen3-30B-A3B against the default
#                                    (qkv), the experts' slice loop at batch 16/64, and the staggered
#                                    kernel's remaining knob tests; Qwen3-30B-A3B with the router's
#                                    norm deferred (FP4LLM_NORM_DEFERRED=router) after its tests
#   tools/gpu_variants.sh b64        batch 64 of Qwen3-8B and Gemma3-27B (the products on warpgroup
#                                    MMAs): the shared-x kernel with 3 row blocks a block, with
#                                    wide x stages, with overlapped chunks, and 2-warpgroup
#                                    clusters for qkv, after their tests; the flash kernel with the
#                                    queries' rope (FP4LLM_FLASH_ROPE) on a 2,048-token prompt,
#                                    after its tests; then where a step goes: the layer's trace at batch 16
#                                    and 64, Nsight Compute's table of one step's wgmma products,
#                                    and the per-instruction stall samples of the shared-x
#                                    (gate_up) and clustered kernels. B64_FORWARD_DUMP= leaves
#                                    the whole-model test's tool unbuilt, for a short call
#   tools/gpu_variants.sh s28        after the twenty-seventh session's defaults (share 3, wide stages,
#                                    overlapped chunks, 17-32 rows on wgmma): the whole GEMV binary,
#                                    whole models against the CPU, then batch 1/16/32/64 of Qwen3-8B,
#                                    64 of Gemma3-27B, 1/32/64 of Qwen3-30B-A3B, with
#                                    FP4LLM_WGMMA_X_PREFETCH=1 and the weights' ring of bulk copies
#                                    (FP4LLM_WGMMA_RING=bulk) after their tests, then the new
#                                    kernels under memcheck and racecheck
#   tools/gpu_variants.sh s28-short  with little device time: the ring's and the shared-x clusters'
#                                    GEMV tests, then each at batch 64 (and 32) of Qwen3-8B and at 64
#                                    of Gemma3-27B against the defaults
#   tools/gpu_variants.sh s28b       after s28 on the same machine: Nsight Compute's table of batch
#                                    64's wgmma products with and without the ring, and the stall
#                                    samples of the clustered and (ring) shared-x kernels
#   tools/gpu_variants.sh s29        the pipelined wgmma GEMV (FP4LLM_WGMMA_PIPELINE=1): its GEMV
#                                    tests, then batch 64 and 48 of Qwen3-8B, 64 of Gemma3-27B and
#                                    Qwen3-30B-A3B against the defaults in the same call; the new
#                                    MoE defaults' tests (slice loop, router norm deferred) and
#                                    batch 1/16/64; whole models against the CPU (defaults and the
#                                    pipeline); racecheck of the pipelined kernel; its Nsight table
#   tools/gpu_variants.sh s29b       the pipelined GEMV's shapes and stage counts on the GEMV
#                                    micro-benchmark (Qwen3-8B's four products, batch 64), after
#                                    its tests; then batch 64 of Qwen3-8B and Gemma3-27B with the
#                                    best of them against the defaults
#   tools/gpu_variants.sh s30        how fast a SM pulls bytes by each way of copying (l2_read_probe:
#                                    ldg, cp.async, 128-byte and 16 KB bulk copies, from L2 and DRAM),
#                                    then the pipelined GEMV with x laid out first
#                                    (FP4LLM_WGMMA_PIPELINE=layout) after its tests, on gemv_bench
#                                    against the defaults and =1, and at batch 64 of Qwen3-8B and
#                                    Gemma3-27B; whole models against the CPU under it last
#   tools/gpu_variants.sh s30b       where batch 64 gains (Gemma3-27B) and loses (Qwen3-8B) with
#                                    x laid out first: kernel traces of both models with and
#                                    without it, gemv_bench on Gemma3-27B's shapes, and Nsight
#                                    Compute's stall view of the pipelined kernel (Qwen3-8B)
#   tools/gpu_variants.sh s30c       the pipelined GEMV with x by tensor copies
#                                    (FP4LLM_WGMMA_PIPELINE=tma) after its tests: gemv_bench on
#                                    Qwen3-8B's and Gemma3-27B's shapes, batch 64 of Qwen3-8B,
#                                    Gemma3-27B and Qwen3-30B-A3B against the defaults, whole models
#                                    against the CPU, then Qwen3-8B's trace under it
#   tools/gpu_variants.sh s30d       =tma's second version (a copier lane and 96 rewriters) after
#                                    its tests: gemv_bench against the defaults and =layout, its
#                                    stage counts, batch 64 of the three models, whole models
#   tools/gpu_variants.sh s30f       =tma-plain (the tensor-copy pipeline only where the default
#                                    runs plain blocks) after its tests: gemv_bench and batch 48
#                                    and 64 of the three models against the defaults (s30e, at
#                                    d8b019f, was the same before the knob's fix)
#   tools/gpu_variants.sh s31        why the pipelined kernel slows the products after it in a
#                                    step: gemv_bench (each product alone, and a layer's four in
#                                    sequence from a graph) and batch 64 of Qwen3-8B and
#                                    Gemma3-27B under =tma-plain and =layout with 3 stages and 1 of
#                                    x (110 KB a block, as small as the default kernels' shared
#                                    memory) and with FP4LLM_SMEM_CARVEOUT=100; then =layout on
#                                    gemv_bench without x's copies, the weights' or the consumers'
#                                    work (FP4LLM_WGMMA_PIPELINE_ABLATE); =layout-written (x laid
#                                    out by the norm and the gated epilogue) after its tests
#   tools/gpu_variants.sh s31b       prefill's gate/up pairing with 16-byte loads, after the last
#                                    slice (now the default) and after each (=slices), against one
#                                    activation a thread (=rows) after their tests: a 2,048-token
#                                    prompt of Qwen3-8B and Gemma3-27B, each twice
#   tools/gpu_variants.sh s32        the GEMV, prefill and whole-model tests with the pairing 8 a
#                                    thread by default, a 2,048-token prompt against =rows (three
#                                    and two times), Gemma3-27B's products on gemv_bench, kernel
#                                    traces of batch 64 of both dense models with the defaults and
#                                    =layout-written, the pipelined kernel with nothing to do
#   tools/gpu_variants.sh s33        =layout-unclustered's tests, then batch 64 of the three
#                                    models against the defaults (Qwen3-8B's traced), and the
#                                    prefill products on gemv_bench (its mode was every product:
#                                    wgmma_pipeline_requested took it)
#   tools/gpu_variants.sh s33b       the same, mended, after the tests of every pipelined path
#                                    (the producers by cp.async and 128-byte bulk copies are gone:
#                                    s29-s30b ask for them and no longer run): batch 64 of the
#                                    three models, also with no row-major stages (5,0), and
#                                    the consumers draining every 2 and 4 stages
#                                    (FP4LLM_WGMMA_PIPELINE_DRAIN), Qwen3-8B's trace; then each
#                                    GEMV kernel's own time under
#                                    Nsight Compute (ncu_gemv)
#   tools/gpu_variants.sh s33c       prefill in slices of equal size (FP4LLM_PREFILL_EVEN_SLICES)
#                                    after its test: gemv_bench --prefill and a 2,048-token prompt
#                                    of Qwen3-8B and Gemma3-27B against the defaults, twice each
#   tools/gpu_variants.sh s33d       where the pipelined kernel's warps wait at batch 64 and the
#                                    default gate_up kernel's (Nsight Compute, SASS stall samples)
#   tools/gpu_variants.sh s34        the pipelined kernel's stages (none of row-major x now unless
#                                    =tma), after their tests: =layout-unclustered with 5, 4 and 3
#                                    stages and =layout-written at batch 64 of the three models
#                                    against the defaults, Qwen3-8B's trace
#   tools/gpu_variants.sh s35        the new defaults (dense models: the pipelined GEMV where
#                                    unclustered; prefill in even slices) after their tests:
#                                    batch 64 (and Qwen3-8B 48) of the three models against
#                                    FP4LLM_WGMMA_PIPELINE=0, a 2,048-token prompt of Qwen3-8B and
#                                    Gemma3-27B against FP4LLM_PREFILL_EVEN_SLICES=0
#   tools/gpu_variants.sh s36        (not yet run) after the GEMV and whole-model tests (the laid-out
#                                    x now allocated at the backend's start; 17-32 rows pipelined,
#                                    FP4LLM_WGMMA_PIPELINE_N32=1): batch 24 and 32 of Qwen3-8B and
#                                    Gemma3-27B with and without N32; the dense default
#                                    against FP4LLM_WGMMA_PIPELINE=0 at 33-64 rows (Qwen3-8B 33,
#                                    40, 48, 56, 64; Gemma3-27B 33, 48, 64), what a stage of the
#                                    default is made of (FP4LLM_WGMMA_PIPELINE_ABLATE on
#                                    gemv_bench), then s33d's SASS stall samples
#   device: carry [".deps"]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build-gpu/logs}
mkdir -p "$OUT"
source tools/gpu_env.sh
eval "$(declare -f bench_variant | sed '1s/bench_variant/bench_variant_timed/')"
started=$(date +%s)  # before the build, which a bare machine needs first
part=${1:-tests}
# `first` and `prefill` need only the CLI and the gtests they run; the other parts everything. The build is incremental: seconds where a call before built it.
targets=$(case $part in first) echo "fp4llm fp4llm_forward_dump gpu_moe gpu_nvfp4_linear gpu_paged_attention" ;;
          core) echo "fp4llm gpu_moe gpu_nvfp4_linear gpu_paged_attention grid_barrier_probe" ;;
          prefill) echo "fp4llm gpu_paged_attention" ;; wide) echo "fp4llm" ;;
          defaults) echo "fp4llm gpu_moe gpu_nvfp4_linear gpu_paged_attention fp4llm_forward_dump" ;;
          last) echo "fp4llm gpu_paged_attention fp4llm_forward_dump" ;;
          defaults2) echo "fp4llm gpu_nvfp4_linear gpu_paged_attention" ;;
          keyrows|keyrows2) echo "fp4llm gpu_paged_attention fp4llm_forward_dump" ;;
          splits) echo "fp4llm gpu_paged_attention" ;;
          merge) echo "fp4llm gpu_paged_attention fp4llm_forward_dump" ;;
          merge2) echo "fp4llm gpu_paged_attention" ;;
          attn-ahead) echo "fp4llm gpu_paged_attention" ;;
          layout) echo "fp4llm gpu_paged_attention gpu_nvfp4_linear fp4llm_forward_dump" ;;
          next) echo "fp4llm gpu_paged_attention gpu_moe gpu_nvfp4_linear fp4llm_forward_dump" ;;
          early) echo "fp4llm gpu_paged_attention fp4llm_forward_dump" ;;
          roles) echo "fp4llm gpu_paged_attention gpu_moe fp4llm_forward_dump" ;;
          roles2) echo "fp4llm fp4llm_forward_dump" ;;
          moe2) echo "fp4llm fp4llm_forward_dump gpu_moe" ;;
          profile2|targets) echo "fp4llm" ;;
          trace|s24|ahead) echo "fp4llm fp4llm_forward_dump gpu_moe gpu_nvfp4_linear" ;;
          s25) echo "fp4llm gpu_paged_attention gpu_nvfp4_linear gpu_moe" ;;
          s25-short) echo "fp4llm gpu_paged_attention" ;;
          s26|s26-defaults) echo "fp4llm gpu_paged_attention gpu_nvfp4_linear gpu_moe fp4llm_forward_dump" ;;
          s27) echo "fp4llm gpu_paged_attention gpu_nvfp4_linear gpu_moe fp4llm_forward_dump" ;;
          b64) echo "fp4llm gpu_nvfp4_linear gpu_paged_attention ${B64_FORWARD_DUMP-fp4llm_forward_dump}" ;;
          s28|s29) echo "fp4llm gpu_nvfp4_linear gpu_moe fp4llm_forward_dump" ;; s29b) echo "fp4llm gpu_nvfp4_linear gemv_bench" ;; s30) echo "fp4llm gpu_nvfp4_linear gemv_bench l2_read_probe fp4llm_forward_dump" ;; s30b) echo "fp4llm gemv_bench" ;; s30c|s30d|s30f|s31|s31b|s32|s33|s33b|s33c|s33d|s34|s35|s36) echo "fp4llm gpu_nvfp4_linear gemv_bench fp4llm_forward_dump" ;; s28b) echo "fp4llm" ;; s28-short) echo "fp4llm gpu_nvfp4_linear" ;; esac)
gpu_build $targets || exit 1
echo "ready after $(( $(date +%s) - started )) s"
# Seconds left of the call's budget (about 9 minutes of its 10; CALL_SECONDS when the device time left is less).
left() { echo $(( ${CALL_SECONDS:-540} - ($(date +%s) - started) )); }
# A knob's tests: 0 when the tests matching PATTERN passed (log in $OUT/LOG), else a line saying why.
gate() {
  if [ "$(left)" -lt 150 ]; then echo "skipped (time)"; return 1; fi
  (cd build-gpu && timeout $(( $(left) - 100 )) ctest --no-tests=error ${GATE_CTEST_ARGS:-} -R "$2" > "$OUT/$1" 2>&1)
  local rc=$?
  [ $rc = 0 ] && return 0
  [ $rc = 124 ] && echo "timed out (see $OUT/$1)" || echo "FAILED (see $OUT/$1)"
  return 1
}
# The tests matching PATTERN through gate, in one line either way: "DESCRIPTION: passed", or why
# not and then the failing entries; 0 when they passed.
tests_passed() {  # log, pattern, description
  local why
  if why=$(gate "$1" "$2"); then echo "$3: passed"; return 0; fi
  echo "GPU tests: $why"; grep -E "Failed|Timeout|FAILED|Failure" "$OUT/$1" | head -8
  return 1
}
# One 2,048-token prompt of MODEL under the knob assignments given (LABEL names the variant and
# its files): one line of ms and TFLOP/s, then the prompt's stages (an extra eager prefill).
prefill_run() {  # model, label, knob assignments...
  local model=$1 v=$2; shift 2
  [ "$(left)" -gt "${PREFILL_MIN_LEFT:-90}" ] || { echo "$model prefill ($v): skipped (time)"; return; }
  env "$@" timeout $(( $(left) < 150 ? $(left) : 150 )) ./build-gpu/fp4llm bench --synthetic $model --batch 1 --output-len 8 --prefill-len 2048 \
    --profile --json "$OUT/prefill-$model-$v.json" > "$OUT/prefill-$model-$v.txt" 2>&1
  python3 -c "import json,sys; p=json.load(open(sys.argv[1]))['prefill']; print(sys.argv[2], 'prefill 2048:', round(p['ms'], 1), 'ms,', round(p['linear_tflops']), 'TFLOP/s in the projections,', round(p['tflops_with_attention']), 'with attention')" \
    "$OUT/prefill-$model-$v.json" "$model $v" 2>/dev/null || echo "$model prefill ($v): FAILED (see $OUT/prefill-$model-$v.txt)"
  grep -m1 'prefill stages' "$OUT/prefill-$model-$v.txt"
}
# Whole models against the CPU (py_gpu_forward) within SECONDS: one line, the log in $OUT/LOG.
whole_models() {  # log, seconds
  (cd build-gpu && timeout $2 ctest -R '^py_gpu_forward$' -V > "$OUT/$1" 2>&1)
  echo "py_gpu_forward: exit $? | $(grep -E '[0-9]+ (passed|failed)' "$OUT/$1" | tail -1)"
}
# Qwen3-8B decoding at 32k keys with the KV cache in KV (fp8, bf16) under the knob assignments
# given: the attention stage's microseconds per step (eager profile) and the step's tok/s.
# CTX32K_MIN_LEFT: the seconds that must be left to start (120; the run is cut at 5 before the end).
ctx32k_run() {  # label, kv dtype, knob assignments...
  local v=$1 kv=$2; shift 2
  [ "$(left)" -gt "${CTX32K_MIN_LEFT:-120}" ] || { echo "32k $v: skipped (time)"; return; }
  env "$@" timeout $(( $(left) - 5 < 150 ? $(left) - 5 : 150 )) ./build-gpu/fp4llm bench --quiet --json "$OUT/ctx32k-$v.json" --kv-cache-dtype $kv \
    --synthetic qwen3-8b --batch 1 --input-len 32768 --output-len 16 --prefill-len 0 --max-num-batched-tokens 4096 \
    --profile > "$OUT/ctx32k-$v.txt" 2>&1
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); d=r['decode'][0]; print('32k', sys.argv[2] + ': attention', round(d['profile_us_per_step'].get('attention', 0)), 'us/step,', round(d['decode_tokens_per_s'], 1), 'tok/s')" \
    "$OUT/ctx32k-$v.json" "$v" || echo "32k $v: FAILED (see $OUT/ctx32k-$v.txt)"
}
# Qwen3-30B-A3B decoding at batch 1 after a prompt of LEN tokens under the knob assignments given
# (LABEL names the variant and its files): one line of tok/s.
prompt_len_run() {  # label, prompt tokens, knob assignments...
  local v=$1 len=$2; shift 2
  [ "$(left)" -gt 40 ] || { echo "qwen3-30b-a3b $len tokens ($v): skipped (time)"; return; }
  env "$@" timeout 60 ./build-gpu/fp4llm bench --quiet --synthetic qwen3-30b-a3b --batch 1 --input-len $len \
    --output-len 64 --json "$OUT/ctx-$len-$v.json" > "$OUT/ctx-$len-$v.txt" 2>&1
  python3 -c "import json,sys; d=json.load(open(sys.argv[1]))['decode'][0]; print('qwen3-30b-a3b b1,', sys.argv[2], 'prompt tokens,', sys.argv[3] + ':', round(d['decode_tokens_per_s'], 1), 'tok/s')" \
    "$OUT/ctx-$len-$v.json" $len $v 2>/dev/null || echo "qwen3-30b-a3b $len tokens ($v): FAILED"
}
# Where a decode step of MODEL at BATCH goes with the defaults (eager, CUDA events between
# stages; small stages read high): one line of microseconds per step.
stages_run() {  # model, batch
  local model=$1 batch=$2
  [ "$(left)" -gt 60 ] || { echo "$model b$batch stages: skipped (time)"; return; }
  timeout 120 ./build-gpu/fp4llm bench --synthetic $model --batch $batch --profile --json "$OUT/profile-$model-b$batch.json" \
    > "$OUT/profile-$model-b$batch.txt" 2>&1
  echo "$model b$batch $(grep -m1 'stages' "$OUT/profile-$model-b$batch.txt" || echo "stages: FAILED (see $OUT/profile-$model-b$batch.txt)")"
}
# Qwen3-30B-A3B's 2,048-token prompt with its expert groups on warpgroup MMAs (default) and on
# the copy ring, same call.
moe_prefill_ab() {
  prefill_run qwen3-30b-a3b experts-wgmma
  prefill_run qwen3-30b-a3b ring FP4LLM_EXPERTS_WGMMA=0
}
# Prefill of one 2,048-token prompt of three models with the defaults (the pipelined flash kernel,
# the warp-per-head rope kernel), with the mask on every tile, with 2 and 4 query heads per flash
# block when their tests passed, and on the first flash kernel, same call.
prefill_ab() {
  local variants="default mask-every-tile first"
  if why=$(gate prefill-heads-tests.log '^gpu_paged_attention(_flash_heads1|_flash_heads2)?$'); then variants="default mask-every-tile heads1 heads2 first"
  else echo "flash heads tests: $why; those benches skipped"; fi
  for model in qwen3-8b gemma3-27b qwen3-30b-a3b; do
    for v in $variants; do
      case $v in
        first) knob="FP4LLM_FLASH_PIPELINED=0 FP4LLM_ROPE_WARPS=0" ;;
        mask-every-tile) knob=FP4LLM_FLASH_MASK_EVERY_TILE=1 ;;
        heads1) knob=FP4LLM_FLASH_HEADS=1 ;;
        heads2) knob=FP4LLM_FLASH_HEADS=2 ;;
        *) knob= ;;
      esac
      prefill_run $model $v $knob
    done
  done
}
if [ "$part" = prefill ]; then prefill_ab; fi
if [ "$part" = tests ]; then
  (cd build-gpu && timeout 360 ctest -L gpu_knob > "$OUT/variant-tests.log" 2>&1)
  echo "tests of the knob variants: exit $? | $(grep -E '^ *[0-9]+/[0-9]+ Test' "$OUT/variant-tests.log" | sed -E 's/ +Test +#[0-9]+: / /; s/ \.+ */ /; s/ +[0-9.]+ sec//' | tr '\n' ';')"
  # Prefill sliced every 48 rows (the default slices hold 32 M values: one slice for these models).
  if [ "$(left)" -gt 150 ]; then
    (cd build-gpu && FP4LLM_PREFILL_SLICE_ROWS=48 \
      timeout $(( $(left) - 10 )) ctest -R '^py_gpu_forward$' -V > "$OUT/gpu-forward-sliced.log" 2>&1)
    echo "py_gpu_forward with 48-row prefill slices (whole models, GPU against CPU): exit $? | $(grep -E '[0-9]+ (passed|failed)' "$OUT/gpu-forward-sliced.log" | tail -1)"
  else
    echo "py_gpu_forward with 48-row prefill slices: skipped (time)"
  fi
fi
if [ "$part" = probes ]; then
  # In order of what the next decisions need; each item only while the call has time for it.
  # The decode GEMV micro-benchmark (Qwen3-8B's shapes): the default kernels, and the copy ring
  # for every row count.
  nvcc -O3 -std=c++20 -gencode=arch=compute_90a,code=sm_90a -Isrc tools/gemv_bench.cu -lcublas -lcublasLt -o build-gpu/gemv_bench \
    > "$OUT/gemv-bench-build.log" 2>&1 || echo "gemv_bench: build FAILED (see $OUT/gemv-bench-build.log)"
  echo "gemv default: $(timeout 60 build-gpu/gemv_bench 2>&1 | tee "$OUT/gemv-default.md" | tail -1)"
  echo "gemv ring: $(FP4LLM_GEMV_KERNEL=ring timeout 60 build-gpu/gemv_bench 2>&1 | tee "$OUT/gemv-ring.md" | tail -1)"
  # Where prefill's time goes: the projections' dequantize + cuBLAS path against cuBLAS alone, and
  # one 2,048-token prefill stage by stage.
  timeout 60 build-gpu/gemv_bench --prefill > "$OUT/prefill-gemm.md" 2>&1; tail -6 "$OUT/prefill-gemm.md"
  if [ "$(left)" -gt 120 ]; then
    timeout 150 ./build-gpu/fp4llm bench --synthetic qwen3-8b --batch 1 --profile --json "$OUT/bench-qwen3-8b-profile.json" \
      > "$OUT/bench-qwen3-8b-profile.txt" 2>&1
    grep -E "stages|prefill" "$OUT/bench-qwen3-8b-profile.txt"
  fi
  # Prefill of 2,048 tokens: the FP8 GEMM (FP4LLM_FP8_PREFILL=1) against BF16 dequantization +
  # cuBLAS, same call (its accuracy on a real model: docs/ACCURACY.md).
  # Also BF16 slices of 2,048 and 4,096 rows (16 and 32 MB at K = 4,096) instead of 32 M values
  # (64 MB): a slice that fits L2 is read back by its GEMM from there instead of from DRAM.
  for v in bf16 fp8 bf16-slice2048 bf16-slice4096; do
    case $v in
      fp8) knob=FP4LLM_FP8_PREFILL=1 ;;
      bf16-slice*) knob=FP4LLM_PREFILL_SLICE_ROWS=${v#bf16-slice} ;;
      *) knob= ;;
    esac
    prefill_run qwen3-8b $v $knob
  done
  # The 32k FP8 attention with one (the default), two and three blocks ahead, same call.
  for ahead in 1 2 3; do ctx32k_run fp8-ahead$ahead fp8 FP4LLM_ATTN_FP8_AHEAD=$ahead; done
  # The lean loop's unchecked loads, every shape of the GEMV tests.
  if [ "$(left)" -gt 90 ]; then
    timeout $(( $(left) - 10 )) compute-sanitizer --tool memcheck build-gpu/gpu_nvfp4_linear > "$OUT/memcheck-lean.log" 2>&1
    echo "memcheck: gpu_nvfp4_linear $(grep -h 'ERROR SUMMARY' "$OUT/memcheck-lean.log")"
  else
    echo "memcheck of the GEMV tests: skipped (time)"
  fi
fi
# Under the call's 10 minutes: variants that would start past 8 are reported as skipped.
bench_variant() {
  if [ "$(left)" -lt 60 ]; then echo "$2: skipped (time)"; else bench_variant_timed "$@"; fi
}
# The defaults, then the knob assignments given (LABEL and LABEL-SUFFIX), one line each.
bench_ab() {  # label, model, batches, suffix, knob assignments...
  local label=$1 model=$2 batches=$3 suffix=$4; shift 4
  bench_variant "$OUT" "$label" "$model" "$batches"
  bench_variant "$OUT" "$label-$suffix" "$model" "$batches" "$@"
}
# The GEMV micro-benchmark (gemv_bench) under the knob assignments given, in one line: the four
# products' microseconds at 64 rows and their sum (LABEL names its file; no commas: the device
# returns no file whose name has one).
gemv_variant() {  # label, knob assignments...
  local label=${1//,/-}; shift
  [ "$(left)" -gt 40 ] || { echo "gemv $label: skipped (time)"; return; }
  env "$@" timeout 60 build-gpu/gemv_bench > "$OUT/gemv-$label.md" 2>&1
  echo "gemv $label: $(grep -h 'clusters at once' "$OUT/gemv-$label.md") $(awk -F'|' '$3+0 == 64 {printf "%s %s us; ", $2, $4}' "$OUT/gemv-$label.md") $(grep -h 'per layer' "$OUT/gemv-$label.md" | sed 's/.*rows 64/rows 64/'); in sequence: $(grep -h 'in sequence' "$OUT/gemv-$label.md" | sed 's/.*graph): //')"
}
# Each GEMV kernel's own time on gemv_bench's products at 64 rows (GEMV_BENCH_PROFILE: two
# copies, a few calls each), from Nsight Compute's per-kernel summary (it serialises the launches,
# so this is the kernel alone, without the launches and waits between them).
ncu_gemv() {  # label, knob assignments...
  local label=$1; shift
  [ "$(left)" -gt 60 ] || { echo "ncu $label: skipped (time)"; return; }
  env GEMV_BENCH_PROFILE=1 "$@" timeout 90 ncu --clock-control none --print-summary per-kernel --kernel-name "regex:gemv|x_to_mma" \
    --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed build-gpu/gemv_bench > "$OUT/ncu-$label.txt" 2>&1
  echo "ncu $label ($*; min, max, average):"
  grep -E "^ +(Invocations|gpu__time_duration|dram__throughput)|gemv|x_to_mma" "$OUT/ncu-$label.txt" | grep -v "^==PROF==" | sed -E 's/\(fp4llm::cuda::GemvArgs[^)]*\)//; s/ +/ /g' | cut -c1-170 | head -48
}
if [ "$part" = bench ]; then
  {
    bench_variant "$OUT" qwen3-8b qwen3-8b 1,16
    bench_variant "$OUT" qwen3-8b-norm-prologue qwen3-8b 1,2 FP4LLM_NORM_PROLOGUE=1
    bench_variant "$OUT" qwen3-8b-pdl-experts qwen3-8b 1,16 FP4LLM_PDL=experts
    bench_variant "$OUT" qwen3-8b-wide qwen3-8b 32,64
    bench_variant "$OUT" qwen3-8b-wide-ring-wide32 qwen3-8b 32,64 FP4LLM_GEMV_MIN_CHUNKS_WIDE=32
    bench_variant "$OUT" qwen3-8b-wide-wgmma qwen3-8b 16,32,64 FP4LLM_GEMV_KERNEL=wgmma
    bench_variant "$OUT" gemma3-27b-wide-wgmma gemma3-27b 32,64 FP4LLM_GEMV_KERNEL=wgmma
    bench_variant "$OUT" gemma3-27b gemma3-27b 1,16
    bench_variant "$OUT" gemma3-27b-pdl-experts gemma3-27b 1,16 FP4LLM_PDL=experts
  } | tee "$OUT/variants.md"
fi
if [ "$part" = bench-moe ]; then
  {
    bench_variant "$OUT" qwen3-30b-a3b qwen3-30b-a3b 1,16
    bench_variant "$OUT" qwen3-30b-a3b-pdl-all qwen3-30b-a3b 1,16 FP4LLM_PDL=all
  } | tee "$OUT/variants-moe.md"
  # Gemma3-27B's memory target (<= 17 GB at 4k, batch 1): NVFP4 head, the table on the GPU and in
  # host memory (--offload-embeddings); chunks of 512 prompt tokens keep the activations small.
  for v in resident offload; do
    [ "$(left)" -lt 60 ] && { echo "gemma3-27b memory ($v): skipped (time)"; continue; }
    knob=$([ $v = offload ] && echo --offload-embeddings)
    timeout 150 ./build-gpu/fp4llm bench --quiet --json "$OUT/mem-gemma3-27b-$v.json" --synthetic gemma3-27b --batch 1 \
      --input-len 4096 --output-len 16 --prefill-len 0 --max-num-batched-tokens 512 --quantize-lm-head $knob \
      > "$OUT/mem-gemma3-27b-$v.txt" 2>&1
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); m=r['memory']; d=r['decode'][0]; print('gemma3-27b 4k, NVFP4 head, table', sys.argv[2] + ':', round(m['gpu_used_bytes']/1e9, 2), 'GB used,', round(m['allocator_peak_bytes']/1e9, 2), 'GB allocator peak,', round(d['decode_tokens_per_s'], 1), 'tok/s')" \
      "$OUT/mem-gemma3-27b-$v.json" "$v" 2>/dev/null || echo "gemma3-27b memory ($v): FAILED (see $OUT/mem-gemma3-27b-$v.txt)"
  done
fi
if [ "$part" = first ]; then
  # A knob's benches run only when its tests passed (a wrong kernel still reports tok/s); the
  # baselines run first, whatever the tests say. Tests start only with time left for them.
  {
    bench_variant "$OUT" qwen3-8b qwen3-8b 1,16
    bench_variant "$OUT" qwen3-30b-a3b qwen3-30b-a3b 1,16
    # Expert groups of more than 64 rows (prefill) on warpgroup MMAs: one 2,048-token prompt of
    # Qwen3-30B-A3B against the copy ring, same call, then decode (unchanged paths) as a check.
    if why=$(gate first-experts-tests.log '^(gpu_moe_experts_ring|gpu_moe|gpu_nvfp4_linear)$'); then
      moe_prefill_ab
      bench_variant "$OUT" qwen3-30b-a3b-experts-ring qwen3-30b-a3b 1,16 FP4LLM_EXPERTS_WGMMA=0
    else echo "expert wgmma tests: $why; benches skipped"; fi
    # Each decode-attention split a cluster of 8 (and 4) blocks: short contexts, then 32k.
    if why=$(gate first-cluster-tests.log '^gpu_paged_attention(_cluster2|_cluster8)?$'); then
      bench_variant "$OUT" qwen3-8b-attn-cluster8 qwen3-8b 1,16 FP4LLM_ATTN_CLUSTER=8
      bench_variant "$OUT" qwen3-30b-a3b-attn-cluster8 qwen3-30b-a3b 1,16 FP4LLM_ATTN_CLUSTER=8
      bench_variant "$OUT" qwen3-30b-a3b-attn-cluster4 qwen3-30b-a3b 1 FP4LLM_ATTN_CLUSTER=4
      for c in 1 8; do ctx32k_run fp8-cluster$c fp8 FP4LLM_ATTN_CLUSTER=$c; done
    else echo "attention cluster tests: $why; benches skipped"; fi
    if [ "$(left)" -gt 150 ]; then
      # The two variants in whole models against the CPU (their benches ran above either way).
      (cd build-gpu && timeout $(( $(left) - 30 )) ctest -R '^py_gpu_forward_(experts_ring|attention_cluster)$' -V \
        > "$OUT/py-variants.log" 2>&1)
      echo "py_gpu_forward_experts_ring, py_gpu_forward_attention_cluster: exit $? | $(grep -E '[0-9]+ (passed|failed)' "$OUT/py-variants.log" | tr '\n' ';')"
    fi
    # Where a batch-1 step goes with the defaults (eager, CUDA events between stages).
    for model in qwen3-8b qwen3-30b-a3b; do stages_run $model 1; done
  } | tee "$OUT/variants-first.md"
fi
if [ "$part" = core ]; then
  # In order of what the session's decisions need; each item only while the call has time.
  {
    if why=$(gate core-tests.log '^gpu_(nvfp4_linear|moe|paged_attention)$'); then echo "default-path GPU tests (gpu_nvfp4_linear, gpu_moe, gpu_paged_attention): passed"
    else echo "default-path GPU tests: $why"; grep -E "Failed|Timeout" "$OUT/core-tests.log"; fi
    prefill_run qwen3-8b default
    prefill_run qwen3-8b mask-every-tile FP4LLM_FLASH_MASK_EVERY_TILE=1
    # The flash kernel at 93 TFLOP/s spends about 15k cycles per key tile and block (fifteenth
    # session's figures): where, by instruction, and what limits its occupancy.
    [ "$(left)" -gt 200 ] && PROFILE_BENCH_ARGS="--input-len 2048 --output-len 5" \
      timeout 150 bash tools/gpu_sass_profile.sh flash_pipelined qwen3-8b 1 10 2>&1 | head -45
    stages_run qwen3-8b 64  # never measured: where batch 64's 11 ms go
    # What a phase boundary costs (kernel in a graph, with early launch, grid barriers): the
    # case for or against a persistent per-layer kernel.
    timeout 60 ./build-gpu/grid_barrier_probe 2>&1 | tee "$OUT/grid-barrier.md" | tail -5
    ctx32k_run fp8 fp8
    ctx32k_run bf16 bf16
    ctx32k_run fp8-ahead2 fp8 FP4LLM_ATTN_FP8_AHEAD=2  # twice the FP8 bytes in flight, same occupancy (221 registers)
    why=$(gate core-knob-tests.log '^(gpu_paged_attention_flash_heads1|gpu_nvfp4_linear_wgmma_single|gpu_paged_attention_cluster8|gpu_moe_experts_ring)$') \
      && echo "knob tests (flash heads 1, wgmma GEMV single blocks, attention cluster 8, experts ring): passed" || echo "knob tests: $why"
    grep -E "^ *[0-9]+/[0-9]+ Test.*(Failed|Timeout)" "$OUT/core-knob-tests.log" 2>/dev/null
    prefill_run qwen3-8b heads1 FP4LLM_FLASH_HEADS=1
    # The flash scores on mma.sync chains (the default on sm_90 is warpgroup MMAs).
    prefill_run qwen3-8b flash-mma FP4LLM_FLASH_WGMMA=0
    # The projections in FP8 through cuBLASLt (never measured; its accuracy cost: docs/ACCURACY.md).
    prefill_run qwen3-8b fp8-products FP4LLM_FP8_PREFILL=1
    bench_variant "$OUT" qwen3-8b-wide qwen3-8b 64
    bench_variant "$OUT" qwen3-8b-wide-single qwen3-8b 64 FP4LLM_WGMMA_CLUSTER=1
    ctx32k_run fp8-cluster8 fp8 FP4LLM_ATTN_CLUSTER=8
    bench_variant "$OUT" qwen3-8b qwen3-8b 1,16
    bench_variant "$OUT" qwen3-8b-attn-cluster8 qwen3-8b 1 FP4LLM_ATTN_CLUSTER=8
    bench_variant "$OUT" qwen3-30b-a3b qwen3-30b-a3b 1,16
    bench_variant "$OUT" qwen3-30b-a3b-attn-cluster8 qwen3-30b-a3b 1 FP4LLM_ATTN_CLUSTER=8
    moe_prefill_ab
    prefill_run qwen3-8b heads2 FP4LLM_FLASH_HEADS=2
  } | tee "$OUT/variants-core.md"
fi
if [ "$part" = defaults ]; then
  {
    # The eighteenth session's defaults (x shared by 4 row blocks in gate_up-sized wgmma products,
    # the flash scores on warpgroup MMAs, the decode attention's mask and rescale as before
    # f2442f8): the default-path tests, the former paths' knob tests, whole models against the CPU.
    tests_passed defaults-tests.log '^(gpu_nvfp4_linear|gpu_moe|gpu_paged_attention|gpu_paged_attention_flash_mma|gpu_nvfp4_linear_wgmma_share_x[24]|gpu_paged_attention_(unpadded_merge|cluster8|warps8))$' \
      "default-path GPU tests, flash on mma.sync, shared x 2/4 everywhere, the unpadded attention merge, clusters of 8, 8 warps"
    [ "$(left)" -gt 150 ] && whole_models defaults-py.log 120
    bench_variant "$OUT" qwen3-8b qwen3-8b 1,16,64
    bench_variant "$OUT" qwen3-30b-a3b qwen3-30b-a3b 1,16
    # The decode attention's warp merge with its bank conflicts (the former layout) at batch 16
    # and 32k (batch 1 measured 3.4% / 1.1% faster padded), same call.
    bench_variant "$OUT" qwen3-30b-a3b-unpadded-merge qwen3-30b-a3b 1,16 FP4LLM_ATTN_PADDED_MERGE=0
    bench_variant "$OUT" qwen3-8b-unpadded-merge qwen3-8b 1,16 FP4LLM_ATTN_PADDED_MERGE=0
    ctx32k_run fp8 fp8
    ctx32k_run fp8-unpadded-merge fp8 FP4LLM_ATTN_PADDED_MERGE=0
    # Attention clusters again now that each block's merge has no bank conflicts (before: +1.0% at
    # MoE batch 1, 32k 2,221 against 1,808 us): 2, 4 and 8 blocks a split; then 8 warps a block.
    # Only after their tests passed (a wrong kernel still reports tok/s).
    if grep -q "100% tests passed" "$OUT/defaults-tests.log" 2>/dev/null; then
      for c in 2 4 8; do
        bench_variant "$OUT" qwen3-30b-a3b-attn-cluster$c qwen3-30b-a3b 1 FP4LLM_ATTN_CLUSTER=$c
        bench_variant "$OUT" qwen3-8b-attn-cluster$c qwen3-8b 1 FP4LLM_ATTN_CLUSTER=$c
      done
      ctx32k_run fp8-cluster2 fp8 FP4LLM_ATTN_CLUSTER=2
      bench_variant "$OUT" qwen3-30b-a3b-attn-warps8 qwen3-30b-a3b 1,16 FP4LLM_ATTN_WARPS=8
      bench_variant "$OUT" qwen3-8b-attn-warps8 qwen3-8b 1,16 FP4LLM_ATTN_WARPS=8
      ctx32k_run fp8-warps8 fp8 FP4LLM_ATTN_WARPS=8
    else echo "attention clusters and 8 warps: tests did not all pass; benches skipped"; fi
  } 2>&1 | tee "$OUT/variants-defaults.md"
fi
if [ "$part" = defaults2 ]; then
  {
    prefill_run qwen3-8b default
    # 2 heads a flash block beat 4 on mma.sync (9.68 against 10.44 ms of attention): on wgmma too?
    prefill_run qwen3-8b heads2 FP4LLM_FLASH_HEADS=2
    # MoE with every decode kernel launched early (its attention costs 11.6 us a layer in the
    # replayed step against the dense model's 8.4, which launches early; measured slower in 2026-12-05's sixth round).
    bench_variant "$OUT" qwen3-30b-a3b-pdl-all qwen3-30b-a3b 1,16 FP4LLM_PDL=all
    # Does the decode attention's cost in the replayed step grow with the keys (each warp's chain
    # of cache blocks) or not (fixed costs)? Batch 1 at 16 and 1,024 prompt tokens, with and
    # without the attention kernel (128 tokens: eighteenth session, docs/PERFORMANCE.md).
    for len in 16 1024; do
      prompt_len_run with $len
      prompt_len_run omit $len FP4LLM_OMIT_STAGE=attention_only
    done
    # The new kernels under compute-sanitizer: the shared-x GEMV on every wgmma product, the
    # flash kernel on wgmma (the default now) with its races checked.
    for t in memcheck:gpu_nvfp4_linear:FP4LLM_WGMMA_SHARE_X=4-every memcheck:gpu_paged_attention: racecheck:gpu_paged_attention:; do
      IFS=: read -r tool bin knob <<< "$t"
      [ "$(left)" -gt 100 ] || { echo "$tool $bin: skipped (time)"; continue; }
      env ${knob:+$knob} FP4LLM_GEMV_KERNEL=wgmma timeout $(( $(left) - 60 )) compute-sanitizer --tool $tool build-gpu/$bin --gtest_brief=1 \
        > "$OUT/$tool-$bin.log" 2>&1
      echo "$tool $bin ${knob:-defaults}: exit $? | $(grep -h 'RACECHECK SUMMARY\|ERROR SUMMARY' "$OUT/$tool-$bin.log" | tail -1)"
    done
    prefill_run qwen3-30b-a3b default
  } 2>&1 | tee "$OUT/variants-defaults2.md"
fi
if [ "$part" = last ]; then
  {
    # When about 4 minutes are left: whole models against the CPU with the defaults, the
    # attention tests, then batch 1 against the former attention merge (ran at ab6b19e with the
    # padded merge under its knob: 56 passed; 13 tests; 361.1 -> 373.2 and 338.9 -> 342.7 tok/s).
    whole_models last-py.log 100
    (cd build-gpu && timeout 40 ./gpu_paged_attention --gtest_brief=1 > "$OUT/last-attention.log" 2>&1)
    rc=$?; echo "gpu_paged_attention: exit $rc | $(grep -E 'PASSED|FAILED' "$OUT/last-attention.log" | head -3 | tr '\n' ' ')"
    if [ $rc = 0 ]; then
      for m in qwen3-30b-a3b qwen3-8b; do
        bench_variant "$OUT" $m $m 1
        bench_variant "$OUT" $m-unpadded-merge $m 1 FP4LLM_ATTN_PADDED_MERGE=0
      done
    fi
  } 2>&1 | tee "$OUT/variants-last.md"
fi
if [ "$part" = keyrows ]; then
  {
    # The nineteenth session's transposed decode attention (FP4LLM_ATTN_KEY_ROWS=1, written without
    # a GPU): its tests (query groups 1 to 8, both caches, alone and in clusters of 2) and whole
    # models first; the benches only if they passed (a wrong kernel still reports tok/s).
    ok=0
    tests_passed keyrows-tests.log '^gpu_paged_attention(_key_rows|_key_rows_cluster2|_key_rows_bounded)?$' \
      "gpu_paged_attention with the defaults, with key rows (free, in clusters of 2, bounded)" && ok=1
    if [ $ok = 1 ] && [ "$(left)" -gt 220 ]; then
      (cd build-gpu && timeout 120 ctest -R '^py_gpu_forward_attention_key_rows$' -V > "$OUT/keyrows-py.log" 2>&1)
      rc=$?; echo "py_gpu_forward_attention_key_rows: exit $rc | $(grep -E '[0-9]+ (passed|failed)' "$OUT/keyrows-py.log" | tail -1)"
      [ $rc = 0 ] || ok=0
    fi
    if [ $ok = 1 ]; then
      for m in qwen3-30b-a3b qwen3-8b; do
        bench_variant "$OUT" $m $m 1,16
        bench_variant "$OUT" $m-key-rows $m 1,16 FP4LLM_ATTN_KEY_ROWS=1
        bench_variant "$OUT" $m-key-rows-bounded $m 1,16 FP4LLM_ATTN_KEY_ROWS=bounded
      done
      # 32k keys: the FP8 / BF16 ratio of the attention's step cost (target <= 0.52) with each,
      # then the splits in clusters of 2 (1,501 against 1,705 us this morning) and 4.
      ctx32k_run fp8 fp8
      ctx32k_run fp8-key-rows fp8 FP4LLM_ATTN_KEY_ROWS=1
      ctx32k_run bf16 bf16
      ctx32k_run bf16-key-rows bf16 FP4LLM_ATTN_KEY_ROWS=1
      ctx32k_run fp8-key-rows-bounded fp8 FP4LLM_ATTN_KEY_ROWS=bounded
      ctx32k_run fp8-key-rows-cluster2 fp8 FP4LLM_ATTN_KEY_ROWS=1 FP4LLM_ATTN_CLUSTER=2
      ctx32k_run fp8-cluster4 fp8 FP4LLM_ATTN_CLUSTER=4
      for c in 2 4; do
        [ "$(left)" -gt 60 ] || continue
        bench_variant "$OUT" qwen3-30b-a3b-key-rows-cluster$c qwen3-30b-a3b 1 FP4LLM_ATTN_KEY_ROWS=1 FP4LLM_ATTN_CLUSTER=$c
        bench_variant "$OUT" qwen3-8b-key-rows-cluster$c qwen3-8b 1 FP4LLM_ATTN_KEY_ROWS=1 FP4LLM_ATTN_CLUSTER=$c
      done
      # Qwen3-30B-A3B batch 1 at 1,024 prompt tokens (the attention cost 1.2 ms a step there this morning).
      prompt_len_run default 1024
      prompt_len_run key-rows 1024 FP4LLM_ATTN_KEY_ROWS=1
      [ "$(left)" -gt 100 ] && bench_variant "$OUT" gemma3-27b gemma3-27b 1
      [ "$(left)" -gt 70 ] && bench_variant "$OUT" gemma3-27b-key-rows gemma3-27b 1 FP4LLM_ATTN_KEY_ROWS=1
    fi
  } 2>&1 | tee "$OUT/variants-keyrows.md"
fi
if [ "$part" = keyrows2 ]; then
  {
    # The key-rows decode attention as the default for query groups up to 8 (measured in the
    # keyrows call, same code under FP4LLM_ATTN_KEY_ROWS=1): the attention tests with it, with
    # the former kernel and in clusters, whole models, then the defaults' figures.
    ok=0
    tests_passed keyrows2-tests.log '^gpu_paged_attention(_query_rows|_cluster2|_warps8)?$' \
      "gpu_paged_attention (key rows by default), the former kernel, clusters of 2, 8 warps" && ok=1
    if [ $ok = 1 ]; then
      [ "$(left)" -gt 250 ] && whole_models keyrows2-py.log 110
      bench_variant "$OUT" qwen3-8b qwen3-8b 1,16,64
      bench_variant "$OUT" qwen3-30b-a3b qwen3-30b-a3b 1,16,64
      ctx32k_run fp8 fp8
      ctx32k_run bf16 bf16
      ctx32k_run fp8-cluster2 fp8 FP4LLM_ATTN_CLUSTER=2
      [ "$(left)" -gt 100 ] && bench_variant "$OUT" gemma3-27b gemma3-27b 1,16
      ctx32k_run bf16-cluster2 bf16 FP4LLM_ATTN_CLUSTER=2
    fi
  } 2>&1 | tee "$OUT/variants-keyrows2.md"
fi
if [ "$part" = splits ]; then
  {
    # The key-rows decode attention (default since c14679d) and the 128-split merge test under
    # compute-sanitizer, then the 32k attention with more splits (FP4LLM_ATTN_SPLIT_BLOCKS).
    for tool in memcheck racecheck; do
      [ "$(left)" -gt 60 ] || { echo "$tool gpu_paged_attention: skipped (time)"; continue; }
      timeout $(( $(left) - 40 )) compute-sanitizer --tool $tool build-gpu/gpu_paged_attention --gtest_brief=1 \
        > "$OUT/$tool-gpu_paged_attention.log" 2>&1
      echo "$tool gpu_paged_attention: exit $? | $(grep -h 'RACECHECK SUMMARY\|ERROR SUMMARY' "$OUT/$tool-gpu_paged_attention.log" | tail -1)"
    done
    for n in 2 8 4; do CTX32K_MIN_LEFT=25 ctx32k_run fp8-blocks$n fp8 FP4LLM_ATTN_SPLIT_BLOCKS=$n; done
  } 2>&1 | tee "$OUT/variants-splits.md"
fi
if [ "$part" = next ]; then
  {
    # The split merge in two passes (default path: every split of every decode attention goes
    # through it), FP4LLM_PDL=products, the wgmma weight ring, the rope in the key-rows attention:
    # the kernel tests first; the benches only if they passed; whole models after the benches
    # (each knob's py test runs the default merge too), so that the A/Bs fit the call.
    ok=0
    tests_passed next-tests.log '^(gpu_paged_attention(_query_rows|_cluster2)?|gpu_moe(_pdl_all|_pdl_products)?|gpu_nvfp4_linear_wgmma_ring(_share_x4)?)$' \
      "gpu_paged_attention (default, former kernel, clusters of 2), gpu_moe (default, every kernel early, products early), the wgmma weight ring" && ok=1
    if [ $ok = 1 ]; then
      # 32k with more splits now that their merge has no chain per split (before: 2 / 4 / 8 blocks
      # a SM 1,532 / 2,245 / 2,956 us of FP8 attention a step).
      ctx32k_run fp8 fp8
      ctx32k_run fp8-blocks4 fp8 FP4LLM_ATTN_SPLIT_BLOCKS=4
      ctx32k_run fp8-blocks8 fp8 FP4LLM_ATTN_SPLIT_BLOCKS=8
      ctx32k_run bf16 bf16
      ctx32k_run bf16-blocks4 bf16 FP4LLM_ATTN_SPLIT_BLOCKS=4
      for m in qwen3-30b-a3b qwen3-8b; do
        bench_variant "$OUT" $m $m 1,16
        bench_variant "$OUT" $m-pdl-products $m 1,16 FP4LLM_PDL=products
        # The key-rows kernel taking the rope kernel's work (before: the former kernel did).
        bench_variant "$OUT" $m-rope-in-attention $m 1,16 FP4LLM_ROPE_IN_ATTENTION=1
      done
      # The wgmma GEMV's weights 8 chunks ahead through shared memory (batch 33-64 products).
      bench_variant "$OUT" qwen3-8b-b64 qwen3-8b 64
      bench_variant "$OUT" qwen3-8b-b64-ring qwen3-8b 64 FP4LLM_WGMMA_RING=1
      bench_variant "$OUT" qwen3-30b-a3b-b64-ring qwen3-30b-a3b 64 FP4LLM_WGMMA_RING=1
      bench_variant "$OUT" qwen3-30b-a3b-b64 qwen3-30b-a3b 64
      # Shorter splits at batch 1 now that the key rows shortened each block and the merge lost its
      # chain (256 beat 128 by 3% on the H200 with the former kernel and merge, 2026-12-04).
      for keys in 128 64; do
        [ "$(left)" -gt 200 ] && bench_variant "$OUT" qwen3-30b-a3b-split-keys$keys qwen3-30b-a3b 1 FP4LLM_ATTN_MIN_SPLIT_KEYS=$keys
      done
      if [ "$(left)" -gt 150 ]; then
        (cd build-gpu && timeout $(( $(left) - 20 )) ctest -R '^py_gpu_forward(_pdl_products|_split_blocks8|_wgmma_ring|_rope_in_attention)$' \
          > "$OUT/next-py.log" 2>&1)
        echo "py_gpu_forward_pdl_products, _split_blocks8, _wgmma_ring, _rope_in_attention: exit $? | $(grep -E 'tests passed|Failed|Timeout' "$OUT/next-py.log" | head -5 | tr '\n' ' ')"
      else echo "whole models with the knobs: skipped (time)"; fi
    fi
  } 2>&1 | tee "$OUT/variants-next.md"
fi
if [ "$part" = merge ]; then
  {
    # The two-pass merge measured slower than the chain it replaced (32k FP8 1,734 against 1,502
    # us a step): each output element's passes over the splits are L2 round trips in a row. The
    # merge by rows loads each row's maxima once and 4 elements a thread 16 splits at a time.
    ok=0
    tests_passed merge-tests.log '^gpu_paged_attention(_query_rows)?$' \
      "gpu_paged_attention (every merge; default and former kernel)" && ok=1
    if [ $ok = 1 ]; then
      ctx32k_run fp8-rows fp8
      ctx32k_run fp8-chain fp8 FP4LLM_ATTN_SPLIT_MERGE=chain
      ctx32k_run fp8-two-pass fp8 FP4LLM_ATTN_SPLIT_MERGE=two_pass
      ctx32k_run bf16-rows bf16
      ctx32k_run bf16-chain bf16 FP4LLM_ATTN_SPLIT_MERGE=chain
      ctx32k_run fp8-rows-blocks4 fp8 FP4LLM_ATTN_SPLIT_BLOCKS=4
      ctx32k_run fp8-rows-blocks8 fp8 FP4LLM_ATTN_SPLIT_BLOCKS=8
      bench_variant "$OUT" qwen3-8b qwen3-8b 1,16
      bench_variant "$OUT" qwen3-8b-chain qwen3-8b 1,16 FP4LLM_ATTN_SPLIT_MERGE=chain
      if [ "$(left)" -gt 120 ]; then
        (cd build-gpu && timeout $(( $(left) - 20 )) ctest -R '^py_gpu_forward_split_blocks8$' > "$OUT/merge-py.log" 2>&1)
        echo "py_gpu_forward_split_blocks8 (whole models, 32-key splits merged by rows): exit $? | $(grep -E 'tests passed|Failed|Timeout' "$OUT/merge-py.log" | head -3 | tr '\n' ' ')"
      else echo "whole models with 32-key splits: skipped (time)"; fi
      if [ "$(left)" -gt 150 ]; then
        PROFILE_BENCH_ARGS="--input-len 32768 --output-len 5 --prefill-len 0 --max-num-batched-tokens 4096" \
          timeout $(( $(left) - 10 )) bash tools/gpu_sass_profile.sh mma_decode_key_rows qwen3-8b 1 40
      else echo "key-rows profile: skipped (time)"; fi
    fi
  } 2>&1 | tee "$OUT/variants-merge.md"
fi
if [ "$part" = merge2 ]; then
  {
    for tool in memcheck racecheck; do
      [ "$(left)" -gt 100 ] || { echo "$tool gpu_paged_attention (splits): skipped (time)"; continue; }
      timeout $(( $(left) - 60 )) compute-sanitizer --tool $tool build-gpu/gpu_paged_attention --gtest_brief=1 \
        --gtest_filter='*Split*:*Merge*' > "$OUT/$tool-gpu_paged_attention.log" 2>&1
      echo "$tool gpu_paged_attention (splits, every merge): exit $? | $(grep -h 'RACECHECK SUMMARY\|ERROR SUMMARY' "$OUT/$tool-gpu_paged_attention.log" | tail -1)"
    done
    # With the merge no longer the cost, fewer or more splits again (2 / 4 / 8 blocks a SM: 1,241 /
    # 1,628 / 1,799 us with the merge by rows, 2026-12-06).
    for n in 1 3; do ctx32k_run fp8-rows-blocks$n fp8 FP4LLM_ATTN_SPLIT_BLOCKS=$n; done
    bench_variant "$OUT" qwen3-30b-a3b qwen3-30b-a3b 1,16,64
    bench_variant "$OUT" qwen3-8b-b64 qwen3-8b 64
    bench_variant "$OUT" gemma3-27b gemma3-27b 1,16
    if [ "$(left)" -gt 120 ]; then
      PROFILE_BENCH_ARGS="--input-len 32768 --output-len 5 --prefill-len 0 --max-num-batched-tokens 4096" \
        timeout $(( $(left) - 10 )) bash tools/gpu_sass_profile.sh mma_decode_key_rows qwen3-8b 1 40
    else echo "key-rows profile: skipped (time)"; fi
  } 2>&1 | tee "$OUT/variants-merge2.md"
fi
if [ "$part" = attn-ahead ]; then
  {
    # The 32k FP8 key-rows attention waits on its cache loads (half the stall samples at the block's
    # first use, DRAM at 61%): more blocks in flight per warp.
    ok=0
    tests_passed ahead-tests.log '^gpu_paged_attention(_fp8_ahead2|_fp8_ahead3)?$' \
      "gpu_paged_attention (default, FP8 2 and 3 blocks ahead)" && ok=1
    if [ $ok = 1 ]; then
      ctx32k_run fp8 fp8
      ctx32k_run fp8-ahead2 fp8 FP4LLM_ATTN_FP8_AHEAD=2
      ctx32k_run fp8-ahead3 fp8 FP4LLM_ATTN_FP8_AHEAD=3
      ctx32k_run bf16 bf16
      for m in qwen3-30b-a3b qwen3-8b; do
        bench_variant "$OUT" $m $m 1,16
        bench_variant "$OUT" $m-ahead2 $m 1,16 FP4LLM_ATTN_FP8_AHEAD=2
        bench_variant "$OUT" $m-ahead3 $m 1,16 FP4LLM_ATTN_FP8_AHEAD=3
      done
      # Short splits at batch 1 again, now that the merge costs a few round trips (two-pass
      # merge: 385.6 -> 336.2 tok/s with 128 keys).
      bench_variant "$OUT" qwen3-30b-a3b-split-keys128 qwen3-30b-a3b 1 FP4LLM_ATTN_MIN_SPLIT_KEYS=128
      ctx32k_run fp8-ahead3-blocks3 fp8 FP4LLM_ATTN_FP8_AHEAD=3 FP4LLM_ATTN_SPLIT_BLOCKS=3
    fi
  } 2>&1 | tee "$OUT/variants-ahead.md"
fi
if [ "$part" = layout ]; then
  {
    # The 32k FP8 attention reads 64% of the copy bandwidth, the BF16 one 81%, and more loads in
    # flight did not help (twentieth session): each warp reads a kv head's 16 keys of a block as 16
    # rows 1 KB apart, 128 bytes each with FP8. Head-major blocks make them one 2 KB run.
    ok=0
    tests_passed layout-tests.log '^gpu_(paged_attention_head_major(_former_kernels|_ahead2)?|nvfp4_linear_head_major)$' \
      "every cache writer and reader in head-major order (default and former kernels)" && ok=1
    if [ $ok = 1 ]; then
      ctx32k_run fp8 fp8
      ctx32k_run fp8-head-major fp8 FP4LLM_KV_LAYOUT=head_major
      ctx32k_run bf16 bf16
      ctx32k_run bf16-head-major bf16 FP4LLM_KV_LAYOUT=head_major
      for m in qwen3-8b qwen3-30b-a3b; do
        bench_variant "$OUT" $m $m 1,16
        bench_variant "$OUT" $m-head-major $m 1,16 FP4LLM_KV_LAYOUT=head_major
      done
      prefill_run qwen3-8b defaults
      prefill_run qwen3-8b head-major FP4LLM_KV_LAYOUT=head_major
      # PV on warpgroup MMAs too (one head a block at head_dim 128), against one head a block with
      # the scores only on them.
      if tests_passed pv-tests.log '^gpu_paged_attention_flash_wgmma_pv(_heads2)?$' "flash PV on warpgroup MMAs"; then
        prefill_run qwen3-8b wgmma-pv FP4LLM_FLASH_WGMMA_PV=1
        prefill_run qwen3-8b heads1 FP4LLM_FLASH_HEADS=1
      fi
      # With whole runs per block, more in flight may pay now (it did not with 128-byte pieces).
      ctx32k_run fp8-head-major-ahead2 fp8 FP4LLM_KV_LAYOUT=head_major FP4LLM_ATTN_FP8_AHEAD=2
      ctx32k_run fp8-head-major-blocks3 fp8 FP4LLM_KV_LAYOUT=head_major FP4LLM_ATTN_SPLIT_BLOCKS=3
      # Prefill's dequantized slices small enough to stay in L2 for their GEMM (50 MB; default
      # 8,192 rows x 4,096 = 64 MB of BF16).
      prefill_run qwen3-8b slice2048 FP4LLM_PREFILL_SLICE_ROWS=2048
      # Qwen3-30B-A3B after 1,024 prompt tokens (attention 25 us a layer with the key rows).
      prompt_len_run defaults 1024
      prompt_len_run head-major 1024 FP4LLM_KV_LAYOUT=head_major
      if [ "$(left)" -gt 150 ]; then
        (cd build-gpu && timeout $(( $(left) - 10 )) ctest -R '^py_gpu_forward_head_major(_rope_in_attention)?$' > "$OUT/layout-py.log" 2>&1)
        echo "py_gpu_forward_head_major, _rope_in_attention: exit $? | $(grep -E 'tests passed|Failed|Timeout' "$OUT/layout-py.log" | head -3 | tr '\n' ' ')"
      else echo "whole models in head-major order: skipped (time)"; fi
      # What the 32k FP8 attention waits on in head-major order (against call 3's 34.0 us a launch,
      # DRAM 61%, long scoreboard 54%, slot-major).
      if [ "$(left)" -gt 120 ]; then
        FP4LLM_KV_LAYOUT=head_major PROFILE_BENCH_ARGS="--input-len 32768 --output-len 5 --prefill-len 0 --max-num-batched-tokens 4096" \
          timeout $(( $(left) - 10 )) bash tools/gpu_sass_profile.sh mma_decode_key_rows qwen3-8b 1 40
      else echo "head-major key-rows profile: skipped (time)"; fi
    fi
  } 2>&1 | tee "$OUT/variants-layout.md"
fi
if [ "$part" = early ]; then
  {
    # At short contexts the decode attention costs about 8 us a layer with almost no bytes behind
    # it, and at 32k keys the same fixed cost is most of what separates the FP8 step from its
    # bytes: its chain of positions, block table and first cache blocks now runs under the rope
    # kernel.
    ok=0
    tests_passed early-tests.log '^gpu_paged_attention$' "attention tests (with the race against the rope kernel)" && ok=1
    if [ $ok = 1 ] && [ "$(left)" -gt 200 ]; then
      (cd build-gpu && timeout 150 ctest -R '^py_gpu_forward_attention_early_blocks$' > "$OUT/early-py.log" 2>&1)
      rc=$?
      echo "py_gpu_forward_attention_early_blocks: exit $rc | $(grep -E 'tests passed|Failed|Timeout' "$OUT/early-py.log" | head -3 | tr '\n' ' ')"
      [ $rc = 0 ] || ok=0
    fi
    if [ $ok = 1 ]; then
      for m in qwen3-30b-a3b qwen3-8b; do
        bench_variant "$OUT" $m $m 1,16
        bench_variant "$OUT" $m-early $m 1,16 FP4LLM_ATTN_EARLY_BLOCKS=1
      done
      ctx32k_run fp8 fp8
      ctx32k_run fp8-early fp8 FP4LLM_ATTN_EARLY_BLOCKS=1
      ctx32k_run bf16 bf16
      ctx32k_run bf16-early bf16 FP4LLM_ATTN_EARLY_BLOCKS=1
      if [ "$(left)" -gt 100 ]; then
        for tool in racecheck memcheck; do
          timeout 60 compute-sanitizer --tool $tool build-gpu/gpu_paged_attention --gtest_brief=1 \
            --gtest_filter='*BeforeTheRope*' > "$OUT/early-$tool.log" 2>&1
          echo "$tool of the early-blocks test: exit $? | $(grep -hE 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/early-$tool.log")"
        done
      fi
      [ "$(left)" -gt 60 ] && bench_variant "$OUT" gemma3-27b gemma3-27b 1
      [ "$(left)" -gt 60 ] && bench_variant "$OUT" gemma3-27b-early gemma3-27b 1 FP4LLM_ATTN_EARLY_BLOCKS=1
      prompt_len_run defaults 1024
      prompt_len_run early 1024 FP4LLM_ATTN_EARLY_BLOCKS=1
    fi
  } 2>&1 | tee "$OUT/variants-early.md"
fi
if [ "$part" = roles ]; then
  {
    # Qwen3-MoE's batch 1 lost with every kernel early and with every product early, yet gained
    # with the decode attention early (twenty-first session): one role at a time says which.
    # First the attention tests: the early blocks leave the token's own block out since ff1798f,
    # and the test that races them against the rope kernel holds it back 200 us since 3897d50.
    rc=1
    if tests_passed roles-attention.log '^gpu_paged_attention(_fp8_ahead2)?$' "attention tests (early blocks, 1 and 2 ahead)"; then
      (cd build-gpu && timeout 200 ctest -R '^py_gpu_forward_pdl_roles$' > "$OUT/roles-py.log" 2>&1)
      rc=$?
      echo "py_gpu_forward_pdl_roles: exit $rc | $(grep -E 'tests passed|Failed|Timeout' "$OUT/roles-py.log" | head -3 | tr '\n' ' ')"
    fi
    if [ $rc = 0 ]; then
      bench_variant "$OUT" moe qwen3-30b-a3b 1,16
      for role in qkv rope o_proj moe lm_head; do
        [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-$role qwen3-30b-a3b 1,16 FP4LLM_PDL_ROLES=$role
      done
      # The norm kernels instead of the products' prologues (measured slower when no product
      # launched early), now with the qkv's weights requested under the kernel before it.
      [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-norm-kernels qwen3-30b-a3b 1,16 FP4LLM_NORM_PROLOGUE=0
      [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-norm-kernels-early qwen3-30b-a3b 1,16 FP4LLM_NORM_PROLOGUE=0 \
        FP4LLM_PDL_ROLES=qkv,o_proj,moe
      # Two FP8 cache blocks a warp requested before the attention's wait instead of one.
      [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-ahead2 qwen3-30b-a3b 1,16 FP4LLM_ATTN_FP8_AHEAD=2
      [ "$(left)" -gt 60 ] && bench_variant "$OUT" qwen3-8b qwen3-8b 1
      [ "$(left)" -gt 60 ] && bench_variant "$OUT" qwen3-8b-ahead2 qwen3-8b 1 FP4LLM_ATTN_FP8_AHEAD=2
      [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-b16 qwen3-30b-a3b 16,64
    [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-slice-loop qwen3-30b-a3b 16,64 FP4LLM_EXPERTS_SLICE_LOOP=1
    [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-again qwen3-30b-a3b 1,16
    fi
  } 2>&1 | tee "$OUT/variants-roles.md"
fi
if [ "$part" = moe2 ]; then
  {
    # MoE expert groups of a few rows in kernels sized for every token of the step, then when an
    # early GEMV lets the next kernel in (Qwen3-MoE lost 8% at batch 1 with its qkv early).
    bench_variant "$OUT" moe qwen3-30b-a3b 1,16,64
    # (Since 3e05b62 the skip and the direct slices are the defaults: this measures the former paths.)
    if tests_passed moe2-skip.log '^(gpu_moe(_ring|_experts_ring)?_padded_tokens|py_gpu_forward_padded_tokens)$' \
        "FP4LLM_GEMV_SKIP_PADDED_TOKENS=0 tests"; then
      [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-padded qwen3-30b-a3b 1,16,64 FP4LLM_GEMV_SKIP_PADDED_TOKENS=0
    fi
    if tests_passed moe2-direct.log '^(gpu_moe_experts_on_ring(_padded_tokens)?|py_gpu_forward_experts_on_ring)$' \
        "FP4LLM_EXPERTS_DIRECT=0 tests"; then
      [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-experts-on-ring qwen3-30b-a3b 64 FP4LLM_EXPERTS_DIRECT=0
      [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-experts-on-ring-padded qwen3-30b-a3b 64 FP4LLM_EXPERTS_DIRECT=0 \
        FP4LLM_GEMV_SKIP_PADDED_TOKENS=0
    fi
    if tests_passed moe2-trigger.log '^(gpu_moe_pdl_trigger_after_wait|py_gpu_forward_pdl_trigger_after_wait)$' \
        "FP4LLM_PDL_TRIGGER=after_wait tests"; then
      [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-after-wait qwen3-30b-a3b 1,16 FP4LLM_PDL_TRIGGER=after_wait
      [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-qkv-early qwen3-30b-a3b 1,16 FP4LLM_PDL_ROLES=qkv,rope,o_proj
      [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-qkv-early-after-wait qwen3-30b-a3b 1,16 FP4LLM_PDL_ROLES=qkv,rope,o_proj \
        FP4LLM_PDL_TRIGGER=after_wait
      [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-all qwen3-30b-a3b 1,16 FP4LLM_PDL=all
      [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-all-after-wait qwen3-30b-a3b 1,16 FP4LLM_PDL=all FP4LLM_PDL_TRIGGER=after_wait
    fi
    # Shorter work items (4 or 2 chunks a warp instead of 8): more K splits, fewer dependent
    # weight round trips per warp; last measured globally on the H200 (2026-12-04).
    [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-min-chunks4 qwen3-30b-a3b 1,16 FP4LLM_GEMV_MIN_CHUNKS=4
    [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-min-chunks2 qwen3-30b-a3b 1,16 FP4LLM_GEMV_MIN_CHUNKS=2
    [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-b16 qwen3-30b-a3b 16,64
    [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-slice-loop qwen3-30b-a3b 16,64 FP4LLM_EXPERTS_SLICE_LOOP=1
    [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-again qwen3-30b-a3b 1,16,64
  } 2>&1 | tee "$OUT/variants-moe2.md"
fi
if [ "$part" = roles2 ]; then
  {
    # Qwen3-MoE lost 8% at batch 1 with its qkv early; dense models launch it early by default and
    # never measured it apart from the rest.
    (cd build-gpu && timeout 200 ctest -R '^py_gpu_forward_pdl_(no_)?roles$' > "$OUT/roles2-py.log" 2>&1)
    rc=$?
    echo "py_gpu_forward_pdl_roles, _no_roles: exit $rc | $(grep -E 'tests passed|Failed|Timeout' "$OUT/roles2-py.log" | head -3 | tr '\n' ' ')"
    if [ $rc = 0 ]; then
      bench_variant "$OUT" moe qwen3-30b-a3b 1,16,64
      [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-with-block qwen3-30b-a3b 1,16,64 FP4LLM_PDL_ROLES=rope,o_proj,moe
      all="qkv rope o_proj mlp lm_head"
      [ "$(left)" -gt 60 ] && bench_variant "$OUT" qwen3-8b qwen3-8b 1,16
      for out in $all; do
        roles=$(echo $all | tr ' ' '\n' | grep -vx $out | paste -sd, -)
        [ "$(left)" -gt 60 ] && bench_variant "$OUT" qwen3-8b-no-$out qwen3-8b 1,16 FP4LLM_PDL_ROLES=$roles
      done
      [ "$(left)" -gt 60 ] && bench_variant "$OUT" qwen3-8b-after-wait qwen3-8b 1,16 FP4LLM_PDL_TRIGGER=after_wait
      [ "$(left)" -gt 60 ] && bench_variant "$OUT" gemma3-27b gemma3-27b 1
      [ "$(left)" -gt 60 ] && bench_variant "$OUT" gemma3-27b-no-qkv gemma3-27b 1 FP4LLM_PDL_ROLES=rope,o_proj,mlp,lm_head
      [ "$(left)" -gt 60 ] && bench_variant "$OUT" qwen3-8b-again qwen3-8b 1,16
    fi
  } 2>&1 | tee "$OUT/variants-roles2.md"
fi
if [ "$part" = targets ]; then
  {
    for kv in fp8 bf16; do
      CTX32K_MIN_LEFT=60 ctx32k_run $kv $kv
      CTX32K_MIN_LEFT=60 ctx32k_run $kv-no-attention $kv FP4LLM_OMIT_STAGE=attention_only
    done
    python3 - "$OUT" <<'PY'
import json, sys
step = {}
for v in ("fp8", "fp8-no-attention", "bf16", "bf16-no-attention"):
    try:
        step[v] = 1e6 / json.load(open(f"{sys.argv[1]}/ctx32k-{v}.json"))["decode"][0]["decode_tokens_per_s"]
    except (OSError, KeyError, IndexError, ValueError):
        print(f"32k {v}: no result, no ratio"); sys.exit(0)
fp8, bf16 = step["fp8"] - step["fp8-no-attention"], step["bf16"] - step["bf16-no-attention"]
print(f"32k attention on the replayed step's critical path: FP8 {fp8:.0f} us, BF16 {bf16:.0f} us, ratio {fp8 / bf16:.3f}")
PY
    # Memory at 4k context, batch 1, NVFP4 lm_head, prompt chunks of 512 (the issues' figures).
    for model in qwen3-30b-a3b gemma3-27b; do
      extra=$([ $model = gemma3-27b ] && echo --offload-embeddings)
      [ "$(left)" -gt 60 ] || { echo "$model 4k memory: skipped (time)"; continue; }
      timeout $(( $(left) - 5 < 150 ? $(left) - 5 : 150 )) ./build-gpu/fp4llm bench --quiet --json "$OUT/mem-$model.json" \
        --synthetic $model --batch 1 --input-len 4096 --output-len 16 --prefill-len 0 --max-num-batched-tokens 512 \
        --quantize-lm-head $extra > "$OUT/mem-$model.txt" 2>&1
      python3 -c "import json,sys; r=json.load(open(sys.argv[1])); m=r['memory']; print(sys.argv[2], '4k, NVFP4 head' + sys.argv[3] + ':', round(m['gpu_used_bytes']/1e9, 2), 'GB used,', round(m['allocator_peak_bytes']/1e9, 2), 'GB allocator peak,', round(r['decode'][0]['decode_tokens_per_s'], 1), 'tok/s')" \
        "$OUT/mem-$model.json" $model "${extra:+, $extra}" 2>/dev/null || echo "$model 4k memory: FAILED (see $OUT/mem-$model.txt)"
    done
  } 2>&1 | tee "$OUT/variants-targets.md"
fi
if [ "$part" = profile2 ]; then
  {
    # What bounds the key-rows attention: at 32k keys (Qwen3-8B, 64% of the copy bandwidth) one launch of the
    # second decode step, at ~130 keys (Qwen3-30B-A3B batch 1) one of the third.
    PROFILE_BENCH_ARGS="--input-len 32768 --output-len 5 --prefill-len 0 --max-num-batched-tokens 4096" \
      timeout 200 bash tools/gpu_sass_profile.sh mma_decode_key_rows qwen3-8b 1 40
    mv "$OUT/sass-mma_decode_key_rows.csv" "$OUT/sass-key-rows-32k.csv" 2>/dev/null
    mv "$OUT/details-mma_decode_key_rows.txt" "$OUT/details-key-rows-32k.txt" 2>/dev/null
    [ "$(left)" -gt 150 ] && timeout 120 bash tools/gpu_sass_profile.sh mma_decode_key_rows qwen3-30b-a3b 1 100
    # The batch-64 products (4 a layer; 288 skipped: the third step's first layer) with and
    # without the weight ring.
    for v in registers ring; do
      [ "$(left)" -gt 100 ] || { echo "wgmma products ($v): skipped (time)"; continue; }
      echo "wgmma products, weights through $v:"
      env $([ $v = ring ] && echo FP4LLM_WGMMA_RING=1) PROFILE_KERNELS=nvfp4_gemv_wgmma FP4LLM_REBUILD=0 \
        timeout 150 bash tools/gpu_profile.sh qwen3-8b 64 288 4
      mv "$OUT/ncu-qwen3-8b-b64.csv" "$OUT/ncu-qwen3-8b-b64-$v.csv" 2>/dev/null
    done
  } 2>&1 | tee "$OUT/variants-profile2.md"
fi
if [ "$part" = wide ]; then
  {
    stages_run qwen3-8b 64
    stages_run qwen3-8b 16
    # Only decode launches the wgmma products (prefill's are GEMMs): 144 a step (4 a layer x 36),
    # so skipping 288 lands on the third step's first layer: qkv, o_proj, gate_up, down.
    PROFILE_KERNELS=nvfp4_gemv_wgmma FP4LLM_REBUILD=0 timeout 240 bash tools/gpu_profile.sh qwen3-8b 64 288 4
    FP4LLM_REBUILD=0 timeout 150 bash tools/gpu_sass_profile.sh nvfp4_gemv_wgmma qwen3-8b 64 290
  } 2>&1 | tee "$OUT/variants-wide.md"
fi
# trace_variant LABEL MODEL BATCHES [VAR=VALUE...]: the kernels of 3 replayed decode steps under
# those settings (CSV, JSON, log as trace-LABEL.*), then each batch's 10 costliest kernels and one
# layer kernel by kernel (tools/trace_layers.py), and the same variant untraced (bench_variant).
trace_variant() {
  local label=$1 model=$2 batches=$3; shift 3
  if env "$@" timeout 120 ./build-gpu/fp4llm bench --synthetic "$model" --batch "$batches" --output-len 16 --prefill-len 0 \
      --quiet --trace "$OUT/trace-$label.csv" --json "$OUT/trace-$label.json" > "$OUT/trace-$label.txt" 2>&1; then
    echo "$label ($*):"; grep -A11 "trace:" "$OUT/trace-$label.txt"
    for b in ${batches//,/ }; do echo "batch $b, one layer:"; python3 tools/trace_layers.py "$OUT/trace-$label.csv" --batch "$b"; done
  else
    echo "$label trace: FAILED (see $OUT/trace-$label.txt)"; tail -3 "$OUT/trace-$label.txt"
  fi
  bench_variant "$OUT" "$label" "$model" "$batches" "$@"
}
if [ "$part" = trace ]; then
  {
    tests_passed trace-tests.log '^(gpu_nvfp4_linear_(normed_min_chunks4|block_warps16)|gpu_moe_experts_splits_wave)$' \
      "FP4LLM_NORMED_MIN_CHUNKS=4, FP4LLM_GEMV_BLOCK_WARPS=16 and FP4LLM_EXPERTS_SPLITS=wave tests"
    trace_variant moe qwen3-30b-a3b 1,16
    [ "$(left)" -gt 60 ] && trace_variant moe-normed8 qwen3-30b-a3b 1 FP4LLM_NORMED_MIN_CHUNKS=8
    [ "$(left)" -gt 60 ] && trace_variant moe-normed4 qwen3-30b-a3b 1 FP4LLM_NORMED_MIN_CHUNKS=4
    [ "$(left)" -gt 60 ] && trace_variant moe-splits-wave qwen3-30b-a3b 1 FP4LLM_EXPERTS_SPLITS=wave
    [ "$(left)" -gt 60 ] && trace_variant moe-norm-kernels qwen3-30b-a3b 1 FP4LLM_NORM_PROLOGUE=0
    [ "$(left)" -gt 60 ] && trace_variant moe-qkv-early qwen3-30b-a3b 1 FP4LLM_PDL_ROLES=qkv,rope,o_proj \
      FP4LLM_PDL_TRIGGER=after_wait
    [ "$(left)" -gt 60 ] && trace_variant qwen3-8b qwen3-8b 1,16
    [ "$(left)" -gt 60 ] && trace_variant qwen3-8b-wide qwen3-8b 1 FP4LLM_GEMV_BLOCK_WARPS=16
    # Where a 2,048-token prompt's 63 ms go, kernel by kernel: the GEMMs, the dequantization, the
    # gate/up pairing, the attention (the prefill target is 500 TFLOP/s, 466 in the last round).
    if [ "$(left)" -gt 60 ]; then
      timeout 120 ./build-gpu/fp4llm bench --synthetic qwen3-8b --batch 1 --output-len 8 --quiet \
        --trace "$OUT/trace-prefill-qwen3-8b.csv" > "$OUT/trace-prefill-qwen3-8b.txt" 2>&1
      grep -A17 "prefill trace:" "$OUT/trace-prefill-qwen3-8b.txt"
      python3 tools/trace_layers.py "$OUT/trace-prefill-qwen3-8b.csv" --batch 0
    fi
    [ "$(left)" -gt 60 ] && trace_variant moe-wide qwen3-30b-a3b 1 FP4LLM_GEMV_BLOCK_WARPS=16
    [ "$(left)" -gt 60 ] && trace_variant qwen3-8b-norm-prologue qwen3-8b 1 FP4LLM_NORM_PROLOGUE=1
    [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-b16 qwen3-30b-a3b 16,64
    [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-slice-loop qwen3-30b-a3b 16,64 FP4LLM_EXPERTS_SLICE_LOOP=1
    [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-again qwen3-30b-a3b 1
  } 2>&1 | tee "$OUT/variants-trace.md"
fi
if [ "$part" = s24 ]; then
  {
    tests_passed s24-tests.log \
      '^(gpu_nvfp4_linear|gpu_moe|gpu_nvfp4_linear_(block_warps8|block_warps16_nt2|normed_min_chunks16|prefill_gated_f32))$' \
      "GEMV and MoE tests (defaults), 8-warp blocks, 16-nt2, normed 16, prefill gate/up in float32"
    bench_variant "$OUT" qwen3-8b qwen3-8b 1,16
    bench_variant "$OUT" qwen3-8b-8warps qwen3-8b 1 FP4LLM_GEMV_BLOCK_WARPS=8
    bench_variant "$OUT" moe qwen3-30b-a3b 1,16
    bench_variant "$OUT" gemma3-27b gemma3-27b 1
    bench_variant "$OUT" gemma3-27b-8warps gemma3-27b 1 FP4LLM_GEMV_BLOCK_WARPS=8
    prefill_run qwen3-8b default
    prefill_run qwen3-8b gated-f32 FP4LLM_PREFILL_GATED_BF16=0
    prefill_run qwen3-8b default-again
    prefill_run qwen3-8b gated-f32-again FP4LLM_PREFILL_GATED_BF16=0
    bench_variant "$OUT" qwen3-8b-nt2 qwen3-8b 16 FP4LLM_GEMV_BLOCK_WARPS=16-nt2
    bench_variant "$OUT" moe-nt2 qwen3-30b-a3b 16 FP4LLM_GEMV_BLOCK_WARPS=16-nt2
    tests_passed s24-py.log '^py_gpu_forward_prefill_gated_f32$' "whole models with prefill's gate/up in float32 against the CPU"
  } 2>&1 | tee "$OUT/variants-s24.md"
fi
if [ "$part" = ahead ]; then
  {
    tests_passed ahead-tests.log '^(gpu_nvfp4_linear|gpu_nvfp4_linear_prefill_gated_f32|gpu_moe_experts_slice_loop)$' \
      "GEMV tests (the L2 request among them), prefill gate/up in float32, the experts' slice loop"
    trace_variant moe qwen3-30b-a3b 1
    [ "$(left)" -gt 60 ] && trace_variant moe-ahead-qkv qwen3-30b-a3b 1 FP4LLM_L2_AHEAD=qkv
    [ "$(left)" -gt 60 ] && trace_variant moe-ahead-o-proj qwen3-30b-a3b 1 FP4LLM_L2_AHEAD=o_proj
    [ "$(left)" -gt 60 ] && trace_variant moe-ahead-down qwen3-30b-a3b 1 FP4LLM_L2_AHEAD=down
    [ "$(left)" -gt 60 ] && trace_variant moe-ahead-gate-up qwen3-30b-a3b 1 FP4LLM_L2_AHEAD=gate_up
    [ "$(left)" -gt 60 ] && trace_variant moe-ahead-all qwen3-30b-a3b 1 FP4LLM_L2_AHEAD=qkv,o_proj,down,gate_up
    [ "$(left)" -gt 60 ] && bench_variant "$OUT" qwen3-8b qwen3-8b 1
    [ "$(left)" -gt 60 ] && bench_variant "$OUT" qwen3-8b-ahead-o-proj qwen3-8b 1 FP4LLM_L2_AHEAD=o_proj
    [ "$(left)" -gt 60 ] && bench_variant "$OUT" qwen3-8b-ahead-qkv-own qwen3-8b 1 FP4LLM_L2_AHEAD=qkv_own
    [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-b16 qwen3-30b-a3b 16,64
    [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-slice-loop qwen3-30b-a3b 16,64 FP4LLM_EXPERTS_SLICE_LOOP=1
    [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe-again qwen3-30b-a3b 1
    if [ "$(left)" -gt 150 ]; then
      (cd build-gpu && timeout $(( $(left) - 20 )) ctest -R '^py_gpu_forward$' -V > "$OUT/ahead-py.log" 2>&1)
      echo "py_gpu_forward: exit $? | $(grep -E '[0-9]+ (passed|failed)' "$OUT/ahead-py.log" | tail -1)"
    fi
  } 2>&1 | tee "$OUT/variants-ahead.md"
fi
if [ "$part" = s25 ]; then
  {
    tests_passed s25-tests.log '^gpu_paged_attention(_flash_(longest_first|first_longest_first|first|heads1|heads2|stagger.*))?$' \
      "attention tests (the defaults, longest tiles first, the staggered kernel)"
    prefill_run qwen3-8b default
    prefill_run qwen3-8b longest-first FP4LLM_FLASH_LONGEST_FIRST=1
    prefill_run qwen3-8b stagger FP4LLM_FLASH_STAGGER=1
    prefill_run qwen3-8b stagger-wgmma-pv FP4LLM_FLASH_STAGGER=1 FP4LLM_FLASH_WGMMA_PV=1
    prefill_run qwen3-8b default-again
    prefill_run qwen3-8b longest-first-again FP4LLM_FLASH_LONGEST_FIRST=1
    prefill_run qwen3-8b stagger-again FP4LLM_FLASH_STAGGER=1
    prefill_run qwen3-8b stagger-wgmma-pv-again FP4LLM_FLASH_STAGGER=1 FP4LLM_FLASH_WGMMA_PV=1
    prefill_run gemma3-27b default
    prefill_run gemma3-27b longest-first FP4LLM_FLASH_LONGEST_FIRST=1
    prefill_run gemma3-27b stagger FP4LLM_FLASH_STAGGER=1
    prefill_run qwen3-8b heads2 FP4LLM_FLASH_HEADS=2
    prefill_run qwen3-8b stagger-heads2 FP4LLM_FLASH_STAGGER=1 FP4LLM_FLASH_HEADS=2
    tests_passed s25-gemv-tests.log '^(gpu_nvfp4_linear|gpu_nvfp4_linear_prefill_gated_f32|gpu_moe_experts_slice_loop)$' \
      "GEMV tests (the L2 request among them), prefill gate/up in float32, the experts' slice loop"
    [ "$(left)" -gt 60 ] && bench_variant "$OUT" moe qwen3-30b-a3b 1
    for part25 in qkv o_proj down gate_up qkv,o_proj,down,gate_up; do
      [ "$(left)" -gt 45 ] && bench_variant "$OUT" "moe-ahead-${part25//,/-}" qwen3-30b-a3b 1 FP4LLM_L2_AHEAD=$part25
    done
    [ "$(left)" -gt 45 ] && bench_variant "$OUT" moe-again qwen3-30b-a3b 1
    # Where the default flash kernel's time goes now (4 heads a block, scores on wgmma): stalls by SASS line.
    [ "$(left)" -gt 90 ] && PROFILE_BENCH_ARGS="--input-len 2048 --output-len 5" timeout $(( $(left) - 10 )) \
      bash tools/gpu_sass_profile.sh flash_pipelined qwen3-8b 1 10
  } 2>&1 | tee "$OUT/variants-s25.md"
fi
if [ "$part" = s25-short ]; then
  {
    for v in "" FP4LLM_FLASH_LONGEST_FIRST=1 FP4LLM_FLASH_STAGGER=1 FP4LLM_FLASH_STAGGER=1,FP4LLM_FLASH_WGMMA_PV=1; do
      log="$OUT/flash-tests-${v:-default}.log"; log=${log//[=,]/-}
      (env ${v//,/ } timeout 60 ./build-gpu/gpu_paged_attention --gtest_filter='*Flash*' > "$log" 2>&1;
       echo "flash tests (${v:-default}): exit $? | $(grep -E 'PASSED|FAILED' "$log" | head -3 | tr '\n' ' ')") &
    done
    wait
    prefill_run qwen3-8b default
    prefill_run qwen3-8b longest-first FP4LLM_FLASH_LONGEST_FIRST=1
    prefill_run qwen3-8b stagger FP4LLM_FLASH_STAGGER=1
    prefill_run qwen3-8b stagger-wgmma-pv FP4LLM_FLASH_STAGGER=1 FP4LLM_FLASH_WGMMA_PV=1
    prefill_run qwen3-8b default-again
  } 2>&1 | tee "$OUT/variants-s25-short.md"
fi
if [ "$part" = s26 ]; then
  {
    t26=$(( $(left) - 300 < 150 ? $(left) - 300 : 150 ))
    [ $t26 -lt 90 ] && t26=90
    (timeout $t26 ./build-gpu/gpu_nvfp4_linear --gtest_filter='*Defer*:*AskingL2*:*UpdatesAndNormalises*:*GatedEpilogue*' \
       > "$OUT/s26-gemv.log" 2>&1; echo "GEMV tests (deferred norm, L2 requests): exit $?") &
    (timeout $t26 ./build-gpu/gpu_moe --gtest_filter='*Defer*:*NormaliseTheirInput*' > "$OUT/s26-moe.log" 2>&1;
     echo "MoE tests (deferred norm, router norm): exit $?") &
    (cd build-gpu && timeout $t26 ctest -R '^py_gpu_forward_norm_deferred$' -V > "$OUT/s26-py.log" 2>&1;
     echo "py_gpu_forward_norm_deferred: exit $? | $(grep -E '[0-9]+ (passed|failed)' "$OUT/s26-py.log" | tail -1)") &
    for v in "" FP4LLM_FLASH_LONGEST_FIRST=1 FP4LLM_FLASH_STAGGER=1 FP4LLM_FLASH_STAGGER=1,FP4LLM_FLASH_WGMMA_PV=1; do
      log="$OUT/flash-tests-${v:-default}.log"; log=${log//[=,]/-}
      (env ${v//,/ } timeout $t26 ./build-gpu/gpu_paged_attention --gtest_filter='*Flash*' > "$log" 2>&1;
       echo "flash tests (${v:-default}): exit $? | $(grep -E 'PASSED|FAILED' "$log" | head -3 | tr '\n' ' ')") &
    done
    wait
    grep -E '^\[  FAILED' "$OUT"/s26-gemv.log "$OUT"/s26-moe.log "$OUT"/flash-tests-*.log | head -8
    grep -E '(FAILED|PASSED|failed|passed)' "$OUT/s26-py.log" | tail -4
    ok26() { grep -q "PASSED" "$1" && ! grep -q "FAILED" "$1"; }
    deferred_ok=0
    ok26 "$OUT/s26-gemv.log" && grep -qE '[0-9]+ passed' "$OUT/s26-py.log" && ! grep -qE '[0-9]+ failed' "$OUT/s26-py.log" && deferred_ok=1
    if [ $deferred_ok = 1 ]; then
      bench_variant "$OUT" qwen3-8b qwen3-8b 1,16
      bench_variant "$OUT" qwen3-8b-deferred qwen3-8b 1,16 FP4LLM_NORM_DEFERRED=1
    else echo "deferred norm: not benched (its tests did not all pass)"; fi
    prefill_run qwen3-8b default
    ok26 "$OUT/flash-tests-FP4LLM_FLASH_LONGEST_FIRST-1.log" && prefill_run qwen3-8b longest-first FP4LLM_FLASH_LONGEST_FIRST=1
    ok26 "$OUT/flash-tests-FP4LLM_FLASH_STAGGER-1.log" && prefill_run qwen3-8b stagger FP4LLM_FLASH_STAGGER=1
    ok26 "$OUT/flash-tests-FP4LLM_FLASH_STAGGER-1-FP4LLM_FLASH_WGMMA_PV-1.log" &&
      prefill_run qwen3-8b stagger-wgmma-pv FP4LLM_FLASH_STAGGER=1 FP4LLM_FLASH_WGMMA_PV=1
    if ok26 "$OUT/s26-gemv.log"; then
      [ "$(left)" -gt 45 ] && bench_variant "$OUT" moe qwen3-30b-a3b 1
      [ "$(left)" -gt 45 ] && bench_variant "$OUT" moe-ahead-all qwen3-30b-a3b 1 FP4LLM_L2_AHEAD=qkv,o_proj,down,gate_up
    fi
    if [ $deferred_ok = 1 ] && ok26 "$OUT/s26-moe.log"; then
      [ "$(left)" -gt 45 ] && bench_variant "$OUT" moe-deferred qwen3-30b-a3b 1 FP4LLM_NORM_DEFERRED=1
      [ "$(left)" -gt 45 ] && bench_variant "$OUT" moe-deferred-qkv-early qwen3-30b-a3b 1 FP4LLM_NORM_DEFERRED=1 \
        FP4LLM_PDL_ROLES=qkv,rope,o_proj
      [ "$(left)" -gt 45 ] && bench_variant "$OUT" moe-deferred-ahead qwen3-30b-a3b 1 FP4LLM_NORM_DEFERRED=1 FP4LLM_L2_AHEAD=qkv
    fi
    if [ $deferred_ok = 1 ]; then
      [ "$(left)" -gt 45 ] && bench_variant "$OUT" qwen3-8b-again qwen3-8b 1
      [ "$(left)" -gt 45 ] && bench_variant "$OUT" qwen3-8b-deferred-again qwen3-8b 1 FP4LLM_NORM_DEFERRED=1
    fi
    PREFILL_MIN_LEFT=60 prefill_run qwen3-8b default-again
    ok26 "$OUT/flash-tests-FP4LLM_FLASH_STAGGER-1.log" && PREFILL_MIN_LEFT=60 prefill_run qwen3-8b stagger-again FP4LLM_FLASH_STAGGER=1
  } 2>&1 | tee "$OUT/variants-s26.md"
fi
if [ "$part" = s26-defaults ]; then
  {
    t=$(( $(left) - 90 < 240 ? $(left) - 90 : 240 ))
    for b in gpu_nvfp4_linear gpu_moe gpu_paged_attention; do
      (timeout $t ./build-gpu/$b > "$OUT/defaults-$b.log" 2>&1;
       echo "$b: exit $? | $(grep -E '^\[  (PASSED|FAILED) ' "$OUT/defaults-$b.log" | tr '\n' ' ')") &
    done
    (cd build-gpu && timeout $t ctest -R '^(py_gpu_forward|py_gpu_forward_norm_kernels|gpu_paged_attention_flash_tiles_fastest)$' \
       > "$OUT/defaults-ctest.log" 2>&1; echo "whole models, the norm kernels, the tiles fastest: exit $?";
     grep -E 'tests passed|Failed|Timeout' "$OUT/defaults-ctest.log" | head -5) &
    wait
    grep -E '^\[  FAILED' "$OUT"/defaults-*.log | head -8
    bench_variant "$OUT" qwen3-8b qwen3-8b 1,16,64
    bench_variant "$OUT" qwen3-8b-norm-kernels qwen3-8b 1,16,64 FP4LLM_NORM_DEFERRED=0
    bench_variant "$OUT" moe qwen3-30b-a3b 1,16,64
    bench_variant "$OUT" moe-norm-kernels qwen3-30b-a3b 1,16,64 FP4LLM_NORM_DEFERRED=0
    bench_variant "$OUT" moe-ahead-qkv qwen3-30b-a3b 1 FP4LLM_L2_AHEAD=qkv
    bench_variant "$OUT" gemma3-27b gemma3-27b 1,16
    PREFILL_MIN_LEFT=30 prefill_run qwen3-8b default
    PREFILL_MIN_LEFT=30 prefill_run qwen3-8b tiles-fastest FP4LLM_FLASH_LONGEST_FIRST=0
    PREFILL_MIN_LEFT=30 prefill_run gemma3-27b default
    PREFILL_MIN_LEFT=30 prefill_run gemma3-27b tiles-fastest FP4LLM_FLASH_LONGEST_FIRST=0
    bench_variant "$OUT" qwen3-8b-again qwen3-8b 1
    bench_variant "$OUT" moe-again qwen3-30b-a3b 1
    bench_variant "$OUT" moe-ahead-qkv-again qwen3-30b-a3b 1 FP4LLM_L2_AHEAD=qkv
  } 2>&1 | tee "$OUT/variants-s26-defaults.md"
fi
if [ "$part" = s27 ]; then
  {
    for t in memcheck:gpu_nvfp4_linear:'*Defer*' racecheck:gpu_nvfp4_linear:'*Defer*' memcheck:gpu_moe:'*Defer*' \
             racecheck:gpu_moe:'*Defer*'; do
      IFS=: read -r tool bin filter <<< "$t"
      [ "$(left)" -gt 200 ] || { echo "$tool $bin: skipped (time)"; continue; }
      timeout 120 compute-sanitizer --tool $tool build-gpu/$bin --gtest_filter="$filter" > "$OUT/$tool-$bin.log" 2>&1
      echo "$tool $bin $filter: exit $? | $(grep -h 'RACECHECK SUMMARY\|ERROR SUMMARY' "$OUT/$tool-$bin.log" | tail -1)"
    done
    trace_variant qwen3-8b qwen3-8b 1
    trace_variant moe qwen3-30b-a3b 1
    if tests_passed s27-router.log '^py_gpu_forward_norm_deferred_router$' "Qwen3-MoE against the CPU with the router's norm deferred"; then
      (timeout 100 ./build-gpu/gpu_moe --gtest_filter='*Deferred*:*Defer*' > "$OUT/s27-moe.log" 2>&1;
       echo "MoE deferred-norm tests: exit $? | $(grep -E '^\[  (PASSED|FAILED) ' "$OUT/s27-moe.log" | tr '\n' ' ')")
      trace_variant moe-router-deferred qwen3-30b-a3b 1 FP4LLM_NORM_DEFERRED=router
    fi
    for part27 in none o_proj down gate_up qkv,o_proj qkv,down qkv,gate_up; do
      [ "$(left)" -gt 45 ] && bench_variant "$OUT" "moe-ahead-${part27//,/-}" qwen3-30b-a3b 1 FP4LLM_L2_AHEAD=$part27
    done
    [ "$(left)" -gt 45 ] && bench_variant "$OUT" moe-again qwen3-30b-a3b 1
    if tests_passed s27-slice.log '^gpu_moe_experts_slice_loop$' "the experts' slice loop"; then
      [ "$(left)" -gt 45 ] && bench_variant "$OUT" moe-b16 qwen3-30b-a3b 16,64
      [ "$(left)" -gt 45 ] && bench_variant "$OUT" moe-slice-loop qwen3-30b-a3b 16,64 FP4LLM_EXPERTS_SLICE_LOOP=1
    fi
    tests_passed s27-stagger.log '^gpu_paged_attention_flash_stagger_(heads2|heads1|mma)$' "the staggered kernel at 2 and 1 heads, on mma.sync"
  } 2>&1 | tee "$OUT/variants-s27.md"
fi
if [ "$part" = b64 ]; then
  {
    passed=0 rope=0
    (timeout 100 ./build-gpu/gpu_paged_attention --gtest_filter='*Rope*' > "$OUT/b64-rope.log" 2>&1
     echo "rope tests (flash and decode): exit $? | $(grep -E '^\[  (PASSED|FAILED) ' "$OUT/b64-rope.log" | tr '\n' ' ')")
    grep -q '^\[  PASSED  \] [0-9]* test' "$OUT/b64-rope.log" && ! grep -q '^\[  FAILED' "$OUT/b64-rope.log" && rope=1
    if [ $rope = 1 ]; then
      prefill_run qwen3-8b default
      prefill_run qwen3-8b flash-rope FP4LLM_FLASH_ROPE=1
      prefill_run qwen3-8b default-again
    fi
    tests_passed b64-tests.log '^gpu_nvfp4_linear_wgmma_(share_x3|narrow_stages4|narrow_stages3|no_overlap|narrow_no_overlap|cluster_wide)$' \
      "the shared-x kernel at 3 row blocks, its wide stages at 3 and 4, its overlapped chunks, the 2-warpgroup clusters" && passed=1
    if [ $passed = 1 ]; then
      m=qwen3-8b
      bench_variant "$OUT" "$m-b64" $m 64
      bench_variant "$OUT" "$m-b64-share3" $m 64 FP4LLM_WGMMA_SHARE_X=3
      bench_variant "$OUT" "$m-b64-wide" $m 64 FP4LLM_WGMMA_WIDE_STAGES=1
      bench_variant "$OUT" "$m-b64-share3-wide" $m 64 FP4LLM_WGMMA_SHARE_X=3 FP4LLM_WGMMA_WIDE_STAGES=1
      bench_variant "$OUT" "$m-b64-share3-wide-overlap" $m 64 FP4LLM_WGMMA_SHARE_X=3 FP4LLM_WGMMA_WIDE_STAGES=1 FP4LLM_WGMMA_OVERLAP=1
      bench_variant "$OUT" "$m-b64-cluster-wide" $m 64 FP4LLM_WGMMA_CLUSTER=2-wide
      bench_variant "$OUT" "$m-b64-again" $m 64
      # Batch 16: gate_up on the shared-x kernel (N = 16, x in shared memory once per 192-256
      # rows) instead of the direct kernel, which reads x from L2 once per 16-row tile; the
      # deferred norm is the direct kernel's, so off in these.
      bench_variant "$OUT" $m-b16 $m 16
      bench_variant "$OUT" $m-b16-wgmma-wide $m 16 FP4LLM_NORM_DEFERRED=0 FP4LLM_GEMV_KERNEL=wgmma_wide
      bench_variant "$OUT" $m-b16-wgmma-wide-stages $m 16 FP4LLM_NORM_DEFERRED=0 FP4LLM_GEMV_KERNEL=wgmma_wide \
        FP4LLM_WGMMA_WIDE_STAGES=1 FP4LLM_WGMMA_SHARE_X=3 FP4LLM_WGMMA_OVERLAP=1
    fi
    [ "$(left)" -gt 100 ] && trace_variant qwen3-8b-b64 qwen3-8b 16,64
    # Only the wgmma products count for the skip (prefill never launches them): 4 a layer, 36
    # layers, so 288 skips two decode steps and 8 launches cover two layers of the third.
    [ "$(left)" -gt 150 ] && PROFILE_KERNELS='nvfp4_gemv_wgmma' FP4LLM_REBUILD=0 timeout 120 bash tools/gpu_profile.sh qwen3-8b 64 288 8
    [ "$(left)" -gt 100 ] && timeout 90 bash tools/gpu_sass_profile.sh nvfp4_gemv_wgmma_shared_x qwen3-8b 64 20
    if [ $rope = 1 ]; then
      tests_passed b64-forward.log '^py_gpu_forward_flash_rope$' "whole models against the CPU with the queries' rope in the flash kernel"
    fi
    if [ $passed = 1 ]; then
      m=gemma3-27b
      bench_variant "$OUT" "$m-b64" $m 64
      bench_variant "$OUT" "$m-b64-share3-wide" $m 64 FP4LLM_WGMMA_SHARE_X=3 FP4LLM_WGMMA_WIDE_STAGES=1
      bench_variant "$OUT" "$m-b64-share3-wide-overlap" $m 64 FP4LLM_WGMMA_SHARE_X=3 FP4LLM_WGMMA_WIDE_STAGES=1 FP4LLM_WGMMA_OVERLAP=1
    fi
  } 2>&1 | tee "$OUT/variants-b64.md"
fi
if [ "$part" = s28 ]; then
  {
    # Every test of the call in one ctest run (4 at a time); each variant is benched only if its
    # own tests passed (a wrong kernel still reports tok/s).
    # (The former paths' knob tests are left out for time: the new defaults' paths passed as knob
    # tests in the twenty-seventh session.)
    gate s28-tests.log '^(gpu_nvfp4_linear|gpu_nvfp4_linear_(wgmma_x_prefetch|wgmma_ring_bulk|wgmma_ring_bulk_share_x3)|py_gpu_forward)$' > /dev/null
    grep -E "tests passed|Failed|Timeout|Not Run" "$OUT/s28-tests.log" | head -12
    variant_passed() { [ -s "$OUT/s28-tests.log" ] && ! grep -E "$1" "$OUT/s28-tests.log" | grep -qE "Failed|Timeout|Not Run"; }
    ok() { grep -qE "$1 .*Passed" "$OUT/s28-tests.log" && variant_passed "$1"; }
    prefetch=0 ring=0 cluster=0
    ok 'gpu_nvfp4_linear_wgmma_x_prefetch' && prefetch=1
    ok 'gpu_nvfp4_linear_wgmma_ring_bulk' && ok 'gpu_nvfp4_linear_wgmma_ring_bulk_share_x3' && ring=1
    echo "variants whose tests passed: x prefetch $prefetch, bulk ring $ring"
    bench_variant "$OUT" qwen3-8b qwen3-8b 1,16,32,64
    [ $ring = 1 ] && bench_variant "$OUT" qwen3-8b-ring-bulk qwen3-8b 32,64 FP4LLM_WGMMA_RING=bulk
    [ $prefetch = 1 ] && bench_variant "$OUT" qwen3-8b-x-prefetch qwen3-8b 64 FP4LLM_WGMMA_X_PREFETCH=1
    bench_variant "$OUT" qwen3-8b-again qwen3-8b 64
    bench_variant "$OUT" gemma3-27b gemma3-27b 64
    [ $ring = 1 ] && bench_variant "$OUT" gemma3-27b-ring-bulk gemma3-27b 64 FP4LLM_WGMMA_RING=bulk
    bench_variant "$OUT" qwen3-30b-a3b qwen3-30b-a3b 1,32,64
    [ $ring = 1 ] && bench_variant "$OUT" qwen3-30b-a3b-ring-bulk qwen3-30b-a3b 64 FP4LLM_WGMMA_RING=bulk
    for t in memcheck racecheck; do
      [ "$(left)" -gt 150 ] || { echo "$t: skipped (time)"; continue; }
      timeout 120 compute-sanitizer --tool $t build-gpu/gpu_nvfp4_linear --gtest_filter='*LargeMatrices*:*MatchesFloat64*' > "$OUT/s28-$t.log" 2>&1
      echo "$t gpu_nvfp4_linear: exit $? | $(grep -h 'RACECHECK SUMMARY\|ERROR SUMMARY' "$OUT/s28-$t.log" | tail -1)"
    done
  } 2>&1 | tee "$OUT/variants-s28.md"
fi
if [ "$part" = s28-short ]; then
  {
    # With little device time: the ring's and the shared-x clusters' GEMV tests, then batch 64 of
    # Qwen3-8B with each against the defaults, then batch 32 and Gemma3-27B.
    ring=0 cluster=0
    tests_passed s28-ring.log '^gpu_nvfp4_linear_wgmma_ring(_share_x3)?$' "the weights' ring (of bulk copies when first run, 2026-12-07)" && ring=1
    tests_passed s28-cluster.log '^gpu_nvfp4_linear_wgmma_share_x_cluster(_ring)?$' "the shared-x clusters" && cluster=1
    m=qwen3-8b
    bench_variant "$OUT" $m-b64 $m 64
    [ $ring = 1 ] && bench_variant "$OUT" $m-b64-ring $m 64 FP4LLM_WGMMA_RING=1
    [ $cluster = 1 ] && bench_variant "$OUT" $m-b64-share-x-cluster $m 64 FP4LLM_WGMMA_SHARE_X_CLUSTER=1
    [ $cluster = 1 ] && [ $ring = 1 ] && bench_variant "$OUT" $m-b64-share-x-cluster-ring $m 64 FP4LLM_WGMMA_SHARE_X_CLUSTER=1 FP4LLM_WGMMA_RING=1
    bench_variant "$OUT" $m-b64-again $m 64
    bench_variant "$OUT" $m-b32 $m 32
    [ $ring = 1 ] && bench_variant "$OUT" $m-b32-ring $m 32 FP4LLM_WGMMA_RING=1
    [ $cluster = 1 ] && bench_variant "$OUT" $m-b32-share-x-cluster $m 32 FP4LLM_WGMMA_SHARE_X_CLUSTER=1
    bench_variant "$OUT" gemma3-27b-b64 gemma3-27b 64
    [ $ring = 1 ] && bench_variant "$OUT" gemma3-27b-b64-ring gemma3-27b 64 FP4LLM_WGMMA_RING=1
    [ $cluster = 1 ] && bench_variant "$OUT" gemma3-27b-b64-share-x-cluster gemma3-27b 64 FP4LLM_WGMMA_SHARE_X_CLUSTER=1
  } 2>&1 | tee "$OUT/variants-s28-short.md"
fi
if [ "$part" = s28b ]; then
  {
    # Where batch 64's wgmma products wait, with the weights in registers and through the ring of
    # copies: one step's table of them, then the stall samples of the clustered kernel
    # (o_proj, down_proj) and of the shared-x kernel with the ring.
    for v in default ring; do
      [ "$(left)" -gt 150 ] || { echo "profile $v: skipped (time)"; continue; }
      mkdir -p "$OUT/$v"
      env $([ $v = ring ] && echo FP4LLM_WGMMA_RING=1) OUT="$OUT/$v" PROFILE_KERNELS='nvfp4_gemv_wgmma' FP4LLM_REBUILD=0 \
        timeout 120 bash tools/gpu_profile.sh qwen3-8b 64 288 8
    done
    [ "$(left)" -gt 100 ] && timeout 90 bash tools/gpu_sass_profile.sh nvfp4_gemv_wgmma_kernel qwen3-8b 64 20
    [ "$(left)" -gt 100 ] && FP4LLM_WGMMA_RING=1 timeout 90 bash tools/gpu_sass_profile.sh nvfp4_gemv_wgmma_shared_x qwen3-8b 64 20
  } 2>&1 | tee "$OUT/variants-s28b.md"
fi
if [ "$part" = s29 ]; then
  {
    # Each variant is benched only if its own tests passed (a wrong kernel still reports tok/s).
    pipe=0
    # A new kernel of barriers may hang: 90 s, not the call's minutes.
    GATE_CTEST_ARGS="--timeout 90" tests_passed s29-pipe.log '^gpu_nvfp4_linear_wgmma_pipeline$' "the pipelined wgmma GEMV" && pipe=1
    m=qwen3-8b
    bench_variant "$OUT" $m $m 48,64
    [ $pipe = 1 ] && bench_variant "$OUT" $m-pipeline $m 48,64 FP4LLM_WGMMA_PIPELINE=1
    bench_variant "$OUT" gemma3-27b gemma3-27b 64
    [ $pipe = 1 ] && bench_variant "$OUT" gemma3-27b-pipeline gemma3-27b 64 FP4LLM_WGMMA_PIPELINE=1
    [ $pipe = 1 ] && bench_variant "$OUT" $m-pipeline-again $m 64 FP4LLM_WGMMA_PIPELINE=1
    bench_variant "$OUT" $m-again $m 64
    if [ $pipe = 1 ] && [ "$(left)" -gt 200 ]; then
      FP4LLM_WGMMA_PIPELINE=1 timeout 100 compute-sanitizer --tool racecheck build-gpu/gpu_nvfp4_linear \
        --gtest_filter='*MatchesFloat64*' > "$OUT/s29-racecheck.log" 2>&1
      echo "racecheck (pipeline) gpu_nvfp4_linear: exit $? | $(grep -h 'RACECHECK SUMMARY' "$OUT/s29-racecheck.log" | tail -1)"
    fi
    tests_passed s29-moe.log '^(gpu_moe|gpu_moe_experts_slice_loop_off)$' "MoE GPU tests (the new defaults and the slice loop off)"
    bench_variant "$OUT" qwen3-30b-a3b qwen3-30b-a3b 1,16,64
    [ $pipe = 1 ] && bench_variant "$OUT" qwen3-30b-a3b-pipeline qwen3-30b-a3b 64 FP4LLM_WGMMA_PIPELINE=1
    tests_passed s29-forward.log '^(py_gpu_forward_wgmma_pipeline|py_gpu_forward_norm_deferred_not_router|py_gpu_forward)$' \
      "whole models against the CPU (defaults, the router normalising, the pipeline)"
    if [ $pipe = 1 ] && [ "$(left)" -gt 150 ]; then
      mkdir -p "$OUT/profile"
      FP4LLM_WGMMA_PIPELINE=1 OUT="$OUT/profile" PROFILE_KERNELS='nvfp4_gemv_pipelined' FP4LLM_REBUILD=0 \
        timeout 120 bash tools/gpu_profile.sh qwen3-8b 64 288 4
    fi
  } 2>&1 | tee "$OUT/variants-s29.md"
fi
if [ "$part" = s29b ]; then
  {
    pipe=0
    GATE_CTEST_ARGS="--timeout 90" tests_passed s29b-pipe.log '^gpu_nvfp4_linear_wgmma_pipeline(_bulk)?$' "the pipelined wgmma GEMV (cp.async and bulk weights)" && pipe=1
    gemv_variant default
    if [ $pipe = 1 ]; then
      gemv_variant pipeline FP4LLM_WGMMA_PIPELINE=1
      gemv_variant pipeline-bulk FP4LLM_WGMMA_PIPELINE=bulk
      for shape in ${PIPELINE_SHAPES-3,1 2,2}; do gemv_variant pipeline-bulk-$shape FP4LLM_WGMMA_PIPELINE=bulk FP4LLM_WGMMA_PIPELINE_SHAPE=$shape; done
      for stages in ${PIPELINE_STAGES-2,2 5,1 3,4}; do gemv_variant pipeline-bulk-stages-$stages FP4LLM_WGMMA_PIPELINE=bulk FP4LLM_WGMMA_PIPELINE_STAGES=$stages; done
      bench_variant "$OUT" qwen3-8b-pipeline-bulk qwen3-8b 64 FP4LLM_WGMMA_PIPELINE=bulk
      bench_variant "$OUT" qwen3-8b-pipeline qwen3-8b 64 FP4LLM_WGMMA_PIPELINE=1
    fi
    bench_variant "$OUT" qwen3-8b qwen3-8b 64
    [ $pipe = 1 ] && bench_variant "$OUT" gemma3-27b-pipeline-bulk gemma3-27b 64 FP4LLM_WGMMA_PIPELINE=bulk
    [ $pipe = 1 ] && bench_variant "$OUT" gemma3-27b gemma3-27b 64
  } 2>&1 | tee "$OUT/variants-s29b.md"
fi
if [ "$part" = s30 ]; then
  {
    timeout 60 build-gpu/l2_read_probe > "$OUT/l2-read-probe.md" 2>&1
    cat "$OUT/l2-read-probe.md"
    layout=0
    GATE_CTEST_ARGS="--timeout 90" tests_passed s30-layout.log '^gpu_nvfp4_linear_wgmma_pipeline_layout$' "the pipelined GEMV with x laid out first" && layout=1
    gemv_variant default
    gemv_variant pipeline FP4LLM_WGMMA_PIPELINE=1
    if [ $layout = 1 ]; then
      gemv_variant layout FP4LLM_WGMMA_PIPELINE=layout
      gemv_variant layout-stages-3-1 FP4LLM_WGMMA_PIPELINE=layout FP4LLM_WGMMA_PIPELINE_STAGES=3,1
      gemv_variant layout-3-1 FP4LLM_WGMMA_PIPELINE=layout FP4LLM_WGMMA_PIPELINE_SHAPE=3,1
      bench_variant "$OUT" qwen3-8b-layout qwen3-8b 64 FP4LLM_WGMMA_PIPELINE=layout
    fi
    bench_variant "$OUT" qwen3-8b qwen3-8b 64
    [ $layout = 1 ] && bench_variant "$OUT" gemma3-27b-layout gemma3-27b 64 FP4LLM_WGMMA_PIPELINE=layout
    [ $layout = 1 ] && bench_variant "$OUT" gemma3-27b gemma3-27b 64
    [ $layout = 1 ] && tests_passed s30-forward.log '^py_gpu_forward_wgmma_pipeline_layout$' "whole models against the CPU with x laid out first"
  } 2>&1 | tee "$OUT/variants-s30.md"
fi
if [ "$part" = s30b ]; then
  {
    gemv_variant gemma-default GEMV_BENCH_SHAPES=gemma3-27b
    gemv_variant gemma-layout GEMV_BENCH_SHAPES=gemma3-27b FP4LLM_WGMMA_PIPELINE=layout
    trace_variant q8-default qwen3-8b 64
    trace_variant q8-layout qwen3-8b 64 FP4LLM_WGMMA_PIPELINE=layout
    trace_variant g27-default gemma3-27b 64
    trace_variant g27-layout gemma3-27b 64 FP4LLM_WGMMA_PIPELINE=layout
    if [ "$(left)" -gt 100 ]; then
      FP4LLM_WGMMA_PIPELINE=layout timeout $(( $(left) - 10 )) bash tools/gpu_sass_profile.sh nvfp4_gemv_pipelined qwen3-8b 64 40 2>&1 | head -45
    fi
  } 2>&1 | tee "$OUT/variants-s30b.md"
fi
# s30c and s30d: the same runs on =tma's first and second versions (s30d also =layout and stage counts).
if [ "$part" = s30c ] || [ "$part" = s30d ]; then
  {
    tma=0
    GATE_CTEST_ARGS="--timeout 90" tests_passed $part-tma.log '^gpu_nvfp4_linear_wgmma_pipeline_tma$' "the pipelined GEMV with x by tensor copies" && tma=1
    if [ $tma = 1 ]; then
      gemv_variant default
      gemv_variant tma FP4LLM_WGMMA_PIPELINE=tma
      if [ $part = s30d ]; then
        gemv_variant layout FP4LLM_WGMMA_PIPELINE=layout
        gemv_variant tma-stages-4-4 FP4LLM_WGMMA_PIPELINE=tma FP4LLM_WGMMA_PIPELINE_STAGES=4,4
        gemv_variant tma-stages-6-2 FP4LLM_WGMMA_PIPELINE=tma FP4LLM_WGMMA_PIPELINE_STAGES=6,2
      fi
      gemv_variant gemma-default GEMV_BENCH_SHAPES=gemma3-27b
      gemv_variant gemma-tma GEMV_BENCH_SHAPES=gemma3-27b FP4LLM_WGMMA_PIPELINE=tma
      bench_variant "$OUT" qwen3-8b-tma qwen3-8b 48,64 FP4LLM_WGMMA_PIPELINE=tma
      bench_variant "$OUT" qwen3-8b qwen3-8b 48,64
      bench_variant "$OUT" gemma3-27b-tma gemma3-27b 64 FP4LLM_WGMMA_PIPELINE=tma
      bench_variant "$OUT" gemma3-27b gemma3-27b 64
      bench_variant "$OUT" qwen3-30b-a3b-tma qwen3-30b-a3b 64 FP4LLM_WGMMA_PIPELINE=tma
      bench_variant "$OUT" qwen3-30b-a3b qwen3-30b-a3b 64
      tests_passed $part-forward.log '^py_gpu_forward_wgmma_pipeline_tma$' "whole models against the CPU with x by tensor copies"
      [ "$(left)" -gt 90 ] && trace_variant q8-tma qwen3-8b 64 FP4LLM_WGMMA_PIPELINE=tma
    fi
  } 2>&1 | tee "$OUT/variants-$part.md"
fi
if [ "$part" = s30f ]; then
  {
    ok=0
    GATE_CTEST_ARGS="--timeout 90" tests_passed s30f-tests.log '^gpu_nvfp4_linear_wgmma_pipeline_tma_plain$' "the tensor-copy pipeline where plain" && ok=1
    if [ $ok = 1 ]; then
      gemv_variant tma-plain FP4LLM_WGMMA_PIPELINE=tma-plain
      gemv_variant gemma-tma-plain GEMV_BENCH_SHAPES=gemma3-27b FP4LLM_WGMMA_PIPELINE=tma-plain
      bench_variant "$OUT" qwen3-8b-tma-plain qwen3-8b 48,64 FP4LLM_WGMMA_PIPELINE=tma-plain
      bench_variant "$OUT" qwen3-8b qwen3-8b 48,64
      bench_variant "$OUT" gemma3-27b-tma-plain gemma3-27b 48,64 FP4LLM_WGMMA_PIPELINE=tma-plain
      bench_variant "$OUT" gemma3-27b gemma3-27b 48,64
      bench_variant "$OUT" qwen3-30b-a3b-tma-plain qwen3-30b-a3b 64 FP4LLM_WGMMA_PIPELINE=tma-plain
      bench_variant "$OUT" qwen3-30b-a3b qwen3-30b-a3b 64
    fi
  } 2>&1 | tee "$OUT/variants-s30f.md"
fi
if [ "$part" = s31 ]; then
  {
    ok=0
    GATE_CTEST_ARGS="--timeout 90" tests_passed s31-tests.log '^gpu_nvfp4_linear_wgmma_pipeline_(tma_plain|layout|layout_written)$' "the pipelined GEMV, =tma-plain, =layout and =layout-written" && ok=1
    gemv_variant default
    if [ $ok = 1 ]; then
      # The carveout suspect: with 3 stages and 1 of x (110 KB a block) the pipelined kernel fits
      # the configuration the default kernels (96-128 KB) run in; with 5 and 4 (226 KB) it does not.
      gemv_variant tma-plain FP4LLM_WGMMA_PIPELINE=tma-plain
      gemv_variant tma-plain-stages-3-1 FP4LLM_WGMMA_PIPELINE=tma-plain FP4LLM_WGMMA_PIPELINE_STAGES=3,1
      gemv_variant layout FP4LLM_WGMMA_PIPELINE=layout
      gemv_variant layout-stages-3-1 FP4LLM_WGMMA_PIPELINE=layout FP4LLM_WGMMA_PIPELINE_STAGES=3,1
      gemv_variant tma-plain-carveout FP4LLM_WGMMA_PIPELINE=tma-plain FP4LLM_SMEM_CARVEOUT=100
      gemv_variant default-carveout FP4LLM_SMEM_CARVEOUT=100
      bench_variant "$OUT" qwen3-8b qwen3-8b 64
      bench_variant "$OUT" qwen3-8b-tma-plain-stages-3-1 qwen3-8b 64 FP4LLM_WGMMA_PIPELINE=tma-plain FP4LLM_WGMMA_PIPELINE_STAGES=3,1
      bench_variant "$OUT" qwen3-8b-layout-stages-3-1 qwen3-8b 64 FP4LLM_WGMMA_PIPELINE=layout FP4LLM_WGMMA_PIPELINE_STAGES=3,1
      bench_variant "$OUT" qwen3-8b-tma-plain-carveout qwen3-8b 64 FP4LLM_WGMMA_PIPELINE=tma-plain FP4LLM_SMEM_CARVEOUT=100
      bench_variant "$OUT" qwen3-8b-layout-written qwen3-8b 48,64 FP4LLM_WGMMA_PIPELINE=layout-written
      bench_variant "$OUT" qwen3-8b-layout-written-stages-3-1 qwen3-8b 64 FP4LLM_WGMMA_PIPELINE=layout-written FP4LLM_WGMMA_PIPELINE_STAGES=3,1
      bench_variant "$OUT" gemma3-27b gemma3-27b 64
      bench_variant "$OUT" gemma3-27b-layout-written gemma3-27b 64 FP4LLM_WGMMA_PIPELINE=layout-written
      bench_variant "$OUT" gemma3-27b-tma-plain-stages-3-1 gemma3-27b 64 FP4LLM_WGMMA_PIPELINE=tma-plain FP4LLM_WGMMA_PIPELINE_STAGES=3,1
      bench_variant "$OUT" gemma3-27b-layout-stages-3-1 gemma3-27b 64 FP4LLM_WGMMA_PIPELINE=layout FP4LLM_WGMMA_PIPELINE_STAGES=3,1
      tests_passed s31-forward.log '^py_gpu_forward_wgmma_pipeline_layout_written$' "whole models against the CPU with x laid out by its writers"
      # What a stage of =layout is made of (gemv_bench only; the results are wrong).
      for a in x weights compute x,weights x,weights,compute; do
        gemv_variant layout-without-$a FP4LLM_WGMMA_PIPELINE=layout FP4LLM_WGMMA_PIPELINE_ABLATE=$a
      done
    fi
  } 2>&1 | tee "$OUT/variants-s31.md"
fi
if [ "$part" = s31b ]; then
  {
    if tests_passed s31b-tests.log '^(gpu_nvfp4_linear_prefill_pair_(rows|slices)|py_gpu_forward_prefill_pair_slices)$' "prefill's pairing, 8 a thread, after the last slice and after each"; then
      for m in qwen3-8b gemma3-27b; do
        prefill_run $m default
        prefill_run $m slices FP4LLM_PREFILL_PAIR=slices
        prefill_run $m rows FP4LLM_PREFILL_PAIR=rows
        prefill_run $m default-again
        prefill_run $m slices-again FP4LLM_PREFILL_PAIR=slices
      done
    fi
  } 2>&1 | tee "$OUT/variants-s31b.md"
fi
if [ "$part" = s32 ]; then
  {
    if tests_passed s32-tests.log '^(gpu_nvfp4_linear|gpu_nvfp4_linear_prefill_pair_rows|py_gpu_forward|py_gpu_forward_prefill_pair_rows)$' \
        "the GEMV and prefill tests, whole models, with the pairing 8 a thread (default) and one a thread"; then
      prefill_run qwen3-8b default
      prefill_run qwen3-8b rows FP4LLM_PREFILL_PAIR=rows
      prefill_run qwen3-8b default-2
      prefill_run qwen3-8b rows-2 FP4LLM_PREFILL_PAIR=rows
      prefill_run qwen3-8b default-3
      prefill_run gemma3-27b default
      prefill_run gemma3-27b rows FP4LLM_PREFILL_PAIR=rows
      prefill_run gemma3-27b default-2
    fi
    # Which of Gemma3-27B's products the pipelined kernel wins in a step, and which it slows.
    gemv_variant gemma-default GEMV_BENCH_SHAPES=gemma3-27b
    gemv_variant gemma-layout-written GEMV_BENCH_SHAPES=gemma3-27b FP4LLM_WGMMA_PIPELINE=layout-written
    gemv_variant gemma-tma-plain-stages-3-1 GEMV_BENCH_SHAPES=gemma3-27b FP4LLM_WGMMA_PIPELINE=tma-plain FP4LLM_WGMMA_PIPELINE_STAGES=3,1
    trace_variant gemma-default gemma3-27b 64
    trace_variant gemma-layout-written gemma3-27b 64 FP4LLM_WGMMA_PIPELINE=layout-written
    trace_variant qwen-default qwen3-8b 64
    trace_variant qwen-layout-written qwen3-8b 64 FP4LLM_WGMMA_PIPELINE=layout-written
    # The pipelined kernel with nothing to move or multiply: without clusters, and with the least
    # shared memory.
    gemv_variant layout-empty-shape-3-1 FP4LLM_WGMMA_PIPELINE=layout FP4LLM_WGMMA_PIPELINE_ABLATE=x,weights,compute FP4LLM_WGMMA_PIPELINE_SHAPE=3,1
    gemv_variant layout-empty-stages-2-1 FP4LLM_WGMMA_PIPELINE=layout FP4LLM_WGMMA_PIPELINE_ABLATE=x,weights,compute FP4LLM_WGMMA_PIPELINE_STAGES=2,1
    # Each kernel's own time (Nsight Compute serialises the launches): what of gemv_bench's
    # 14-18 us an empty product is the kernels' and what is between them.
    for a in none x,weights,compute; do
      [ "$(left)" -gt 60 ] || break
      echo "ncu, =layout, ablate $a (first qkv launches at 64 rows):"
      env FP4LLM_WGMMA_PIPELINE=layout FP4LLM_WGMMA_PIPELINE_ABLATE=${a/none/} timeout 90 ncu --clock-control none --csv --page raw \
        --kernel-name "regex:pipelined|x_to_mma" --launch-skip 40 --launch-count 6 \
        --metrics gpu__time_duration.sum,launch__grid_size,dram__bytes_read.sum build-gpu/gemv_bench 2>&1 |
        grep -E '^"[0-9]' | awk -F'","' '{print $(NF-2), $(NF-1), $NF, substr($5, 1, 70)}'
    done
  } 2>&1 | tee "$OUT/variants-s32.md"
fi
if [ "$part" = s33 ]; then
  {
    if tests_passed s33-tests.log '^(gpu_nvfp4_linear_wgmma_pipeline_layout_unclustered|py_gpu_forward_wgmma_pipeline_layout_unclustered)$' \
        "the pipelined GEMV only where the default takes no clusters, and whole models so"; then
      bench_variant "$OUT" qwen3-8b qwen3-8b 64
      trace_variant qwen-unclustered qwen3-8b 64 FP4LLM_WGMMA_PIPELINE=layout-unclustered
      bench_variant "$OUT" qwen3-8b-unclustered-stages-3-1 qwen3-8b 64 FP4LLM_WGMMA_PIPELINE=layout-unclustered FP4LLM_WGMMA_PIPELINE_STAGES=3,1
      bench_variant "$OUT" gemma3-27b gemma3-27b 64
      bench_variant "$OUT" gemma3-27b-unclustered gemma3-27b 64 FP4LLM_WGMMA_PIPELINE=layout-unclustered
      bench_variant "$OUT" qwen3-30b-a3b qwen3-30b-a3b 64
      bench_variant "$OUT" qwen3-30b-a3b-unclustered qwen3-30b-a3b 64 FP4LLM_WGMMA_PIPELINE=layout-unclustered
      bench_variant "$OUT" qwen3-8b-again qwen3-8b 64
    fi
    # The prefill path's products alone: dequantization + cuBLAS against cuBLAS on BF16 weights.
    [ "$(left)" -gt 60 ] && timeout 60 build-gpu/gemv_bench --prefill > "$OUT/gemv-prefill.md" 2>&1; tail -12 "$OUT/gemv-prefill.md"
  } 2>&1 | tee "$OUT/variants-s33.md"
fi
if [ "$part" = s33b ]; then
  {
    # Every pipelined path after its producers by cp.async and 128-byte bulk copies went.
    if GATE_CTEST_ARGS="--timeout 90" tests_passed s33b-tests.log \
        '^(gpu_nvfp4_linear_wgmma_pipeline_(layout|layout_written|layout_unclustered|tma|tma_plain|drain2|drain4)|py_gpu_forward_wgmma_pipeline_(layout_unclustered|tma))$' \
        "the pipelined GEMV's five ways (=layout-unclustered mended), and whole models so"; then
      bench_variant "$OUT" qwen3-8b qwen3-8b 64
      bench_variant "$OUT" qwen3-8b-unclustered qwen3-8b 64 FP4LLM_WGMMA_PIPELINE=layout-unclustered
      bench_variant "$OUT" gemma3-27b-unclustered gemma3-27b 64 FP4LLM_WGMMA_PIPELINE=layout-unclustered
      bench_variant "$OUT" qwen3-30b-a3b-unclustered qwen3-30b-a3b 64 FP4LLM_WGMMA_PIPELINE=layout-unclustered
      # Without the row-major stages that only =tma uses (152 KB a block instead of 218).
      bench_variant "$OUT" qwen3-8b-unclustered-stages-5-0 qwen3-8b 64 FP4LLM_WGMMA_PIPELINE=layout-unclustered FP4LLM_WGMMA_PIPELINE_STAGES=5,0
      bench_variant "$OUT" gemma3-27b-unclustered-stages-5-0 gemma3-27b 64 FP4LLM_WGMMA_PIPELINE=layout-unclustered FP4LLM_WGMMA_PIPELINE_STAGES=5,0
      bench_variant "$OUT" qwen3-8b-again qwen3-8b 64
      bench_variant "$OUT" qwen3-30b-a3b qwen3-30b-a3b 64
      bench_variant "$OUT" gemma3-27b gemma3-27b 64
      # The consumers draining their MMAs every 2 and 4 stages.
      for d in 1 2 4; do gemv_variant layout-drain-$d FP4LLM_WGMMA_PIPELINE=layout FP4LLM_WGMMA_PIPELINE_DRAIN=$d; done
      bench_variant "$OUT" qwen3-8b-unclustered-drain-2 qwen3-8b 64 FP4LLM_WGMMA_PIPELINE=layout-unclustered FP4LLM_WGMMA_PIPELINE_DRAIN=2
      bench_variant "$OUT" gemma3-27b-unclustered-drain-2 gemma3-27b 64 FP4LLM_WGMMA_PIPELINE=layout-unclustered FP4LLM_WGMMA_PIPELINE_DRAIN=2
      bench_variant "$OUT" gemma3-27b-unclustered-drain-4 gemma3-27b 64 FP4LLM_WGMMA_PIPELINE=layout-unclustered FP4LLM_WGMMA_PIPELINE_DRAIN=4
      trace_variant qwen-unclustered qwen3-8b 64 FP4LLM_WGMMA_PIPELINE=layout-unclustered
    fi
    ncu_gemv qwen-default
    ncu_gemv qwen-unclustered FP4LLM_WGMMA_PIPELINE=layout-unclustered
    ncu_gemv gemma-default GEMV_BENCH_SHAPES=gemma3-27b
  } 2>&1 | tee "$OUT/variants-s33b.md"
fi
if [ "$part" = s33c ]; then
  {
    if tests_passed s33c-tests.log '^gpu_nvfp4_linear_prefill_even_slices$' "prefill in slices of equal size"; then
      for v in default even; do
        [ $v = even ] && set -- FP4LLM_PREFILL_EVEN_SLICES=1 || set --
        echo "gemv_bench --prefill ($v):"; env "$@" timeout 60 build-gpu/gemv_bench --prefill > "$OUT/gemv-prefill-$v.md" 2>&1
        tail -6 "$OUT/gemv-prefill-$v.md"
      done
      for m in qwen3-8b gemma3-27b; do
        prefill_run $m default
        prefill_run $m even FP4LLM_PREFILL_EVEN_SLICES=1
        prefill_run $m default-again
        prefill_run $m even-again FP4LLM_PREFILL_EVEN_SLICES=1
      done
    fi
  } 2>&1 | tee "$OUT/variants-s33c.md"
fi
if [ "$part" = s33d ]; then
  {
    # Where the pipelined kernel's warps wait in a batch-64 step (=layout-unclustered: Qwen3-8B's
    # qkv and gate_up), against the default gate_up kernel's: Nsight Compute's headline figures and
    # hottest SASS lines by stall samples, one launch each.
    for k in nvfp4_gemv_pipelined nvfp4_gemv_wgmma_shared_x; do
      [ "$(left)" -gt 90 ] || { echo "$k: skipped (time)"; continue; }
      echo "== $k, Qwen3-8B batch 64 =="
      [ $k = nvfp4_gemv_pipelined ] && export FP4LLM_WGMMA_PIPELINE=layout-unclustered || export FP4LLM_WGMMA_PIPELINE=0
      OUT="$OUT" timeout 150 bash tools/gpu_sass_profile.sh $k qwen3-8b 64 50 2>&1 | tail -45
    done
    unset FP4LLM_WGMMA_PIPELINE
  } 2>&1 | tee "$OUT/variants-s33d.md"
fi
if [ "$part" = s34 ]; then
  {
    if GATE_CTEST_ARGS="--timeout 90" tests_passed s34-tests.log \
        '^(gpu_nvfp4_linear_wgmma_pipeline_(layout_unclustered|layout_written|stages3|tma_stages2|tma)|py_gpu_forward_wgmma_pipeline_layout_unclustered)$' \
        "the pipelined GEMV without row-major stages (5,0), with 3 stages, =tma with 2,1; whole models so"; then
      u=FP4LLM_WGMMA_PIPELINE=layout-unclustered
      bench_variant "$OUT" qwen3-8b qwen3-8b 64
      bench_variant "$OUT" qwen3-8b-unclustered qwen3-8b 64 $u
      bench_variant "$OUT" qwen3-8b-unclustered-stages-4 qwen3-8b 64 $u FP4LLM_WGMMA_PIPELINE_STAGES=4,0
      bench_variant "$OUT" qwen3-8b-unclustered-stages-3 qwen3-8b 64 $u FP4LLM_WGMMA_PIPELINE_STAGES=3,0
      bench_variant "$OUT" qwen3-8b-written qwen3-8b 64 FP4LLM_WGMMA_PIPELINE=layout-written
      bench_variant "$OUT" qwen3-30b-a3b qwen3-30b-a3b 64
      bench_variant "$OUT" qwen3-30b-a3b-unclustered qwen3-30b-a3b 64 $u
      bench_variant "$OUT" qwen3-30b-a3b-unclustered-stages-4 qwen3-30b-a3b 64 $u FP4LLM_WGMMA_PIPELINE_STAGES=4,0
      bench_variant "$OUT" gemma3-27b gemma3-27b 64
      bench_variant "$OUT" gemma3-27b-unclustered gemma3-27b 64 $u
      bench_variant "$OUT" gemma3-27b-unclustered-stages-4 gemma3-27b 64 $u FP4LLM_WGMMA_PIPELINE_STAGES=4,0
      bench_variant "$OUT" gemma3-27b-written gemma3-27b 64 FP4LLM_WGMMA_PIPELINE=layout-written
      bench_variant "$OUT" qwen3-8b-unclustered-again qwen3-8b 64 $u
      bench_variant "$OUT" qwen3-8b-again qwen3-8b 64
      bench_variant "$OUT" qwen3-30b-a3b-unclustered-again qwen3-30b-a3b 64 $u
      trace_variant qwen-unclustered qwen3-8b 64 $u
    fi
  } 2>&1 | tee "$OUT/variants-s34.md"
fi
if [ "$part" = s35 ]; then
  {
    if GATE_CTEST_ARGS="--timeout 120" tests_passed s35-tests.log \
        '^(gpu_nvfp4_linear(_wgmma_pipeline_(off|layout_unclustered|stages3))?|gpu_nvfp4_linear_(sliced_prefill|prefill_(even|ragged)_slices(48)?)|py_gpu_forward(_wgmma_pipeline_off)?)$' \
        "the new defaults (pipelined where unclustered for dense models, even prefill slices), =0 of each, whole models"; then
      off=FP4LLM_WGMMA_PIPELINE=0
      bench_variant "$OUT" qwen3-8b qwen3-8b 48,64
      bench_variant "$OUT" qwen3-8b-pipeline-off qwen3-8b 48,64 $off
      bench_variant "$OUT" gemma3-27b gemma3-27b 64
      bench_variant "$OUT" gemma3-27b-pipeline-off gemma3-27b 64 $off
      bench_variant "$OUT" qwen3-30b-a3b qwen3-30b-a3b 64
      bench_variant "$OUT" qwen3-8b-again qwen3-8b 48,64
      bench_variant "$OUT" qwen3-8b-pipeline-off-again qwen3-8b 48,64 $off
      for m in qwen3-8b gemma3-27b; do
        prefill_run $m default
        prefill_run $m ragged FP4LLM_PREFILL_EVEN_SLICES=0
      done
      trace_variant qwen-default qwen3-8b 64
    fi
  } 2>&1 | tee "$OUT/variants-s35.md"
fi
if [ "$part" = s36 ]; then
  {
    if GATE_CTEST_ARGS="--timeout 150" tests_passed s36-tests.log \
        '^(gpu_nvfp4_linear(_wgmma_pipeline_n32(_every)?)?|py_gpu_forward(_wgmma_pipeline_n32)?)$' \
        "the GEMV tests and whole models (GPU against CPU) with the laid-out x allocated at start, and 17-32 rows pipelined"; then
      bench_ab qwen3-8b-b24-32 qwen3-8b 24,32 n32 FP4LLM_WGMMA_PIPELINE_N32=1
      bench_ab gemma3-27b-b24-32 gemma3-27b 24,32 n32 FP4LLM_WGMMA_PIPELINE_N32=1
      bench_ab qwen3-8b qwen3-8b 33,40,48,56,64 pipeline-off FP4LLM_WGMMA_PIPELINE=0
      bench_ab gemma3-27b gemma3-27b 33,48,64 pipeline-off FP4LLM_WGMMA_PIPELINE=0
      grep -h "memory" "$OUT/bench-qwen3-8b.txt" | head -3
      # What a stage of the default's pipelined products is made of (results wrong by design).
      for a in none x weights compute x,weights,compute; do
        gemv_variant "ablate-${a//,/-}" FP4LLM_WGMMA_PIPELINE_ABLATE=${a/none/}
      done
    fi
    for k in nvfp4_gemv_pipelined nvfp4_gemv_wgmma_kernel; do
      [ "$(left)" -gt 90 ] || { echo "$k: skipped (time)"; continue; }
      echo "== $k, Qwen3-8B batch 64 (the default) =="
      OUT="$OUT" timeout 150 bash tools/gpu_sass_profile.sh $k qwen3-8b 64 50 2>&1 | tail -45
    done
  } 2>&1 | tee "$OUT/variants-s36.md"
fi
# The device returns at most 8 files: the logs and JSON in one archive, the summaries beside it.
if [ "$OUT" != build-gpu/logs ]; then
  tar czf "/tmp/variants-$part.tgz" -C "$OUT" --exclude '*.tgz' --exclude 'variants-*.md' . &&
    find "$OUT" -type f ! -name 'variants-*.md' ! -name '*.tgz' -delete && mv "/tmp/variants-$part.tgz" "$OUT/"
fi
