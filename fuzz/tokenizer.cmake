# Tokenizer fuzzers (see docs/tokenizer.md for the runs):
#   tokenizer_fuzz       arbitrary bytes to encode, arbitrary ids to decode and to the streaming
#                        detokenizer, on the real Qwen3 and Gemma3 files (loaded once);
#   tokenizer_json_fuzz  small mutated tokenizer.json files to the loader.
# The real files come from FP4LLM_SHARED_DIR at run time, else from the shared folder beside
# the checkout.
set(FP4LLM_FUZZ_SHARED_DIR ${PROJECT_SOURCE_DIR}/../shared)
fp4llm_add_fuzzer(tokenizer_fuzz ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_fuzz.cpp
                  LIBS fp4llm_tokenizer)
target_compile_definitions(tokenizer_fuzz PRIVATE
                           FP4LLM_DEFAULT_SHARED_DIR="${FP4LLM_FUZZ_SHARED_DIR}")
fp4llm_add_fuzzer(tokenizer_json_fuzz ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_json_fuzz.cpp
                  LIBS fp4llm_tokenizer)
