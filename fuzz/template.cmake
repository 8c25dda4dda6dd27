# Chat template engine fuzzer: ./build-fuzz/template_fuzz -max_total_time=600 CORPUS_DIR
# (see docs/chat_template.md for the seed corpus and the last run).
fp4llm_add_fuzzer(template_fuzz ${CMAKE_CURRENT_SOURCE_DIR}/template_fuzz.cpp LIBS fp4llm_template)
target_compile_definitions(template_fuzz PRIVATE
  FP4LLM_FUZZ_TOKENIZERS_DIR="${PROJECT_SOURCE_DIR}/../shared/testdata/tokenizers")
