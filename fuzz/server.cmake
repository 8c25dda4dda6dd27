# OpenAI request parsing fuzzer: ./build-fuzz/server_request_fuzz -max_total_time=600 CORPUS_DIR
# (seeds: fuzz/server_request_seeds; results in docs/FUZZING.md).
if(TARGET fp4llm_server)
  fp4llm_add_fuzzer(server_request_fuzz ${CMAKE_CURRENT_SOURCE_DIR}/server_request_fuzz.cpp LIBS fp4llm_server)
  target_compile_definitions(server_request_fuzz PRIVATE
    FP4LLM_FUZZ_TOKENIZERS_DIR="${PROJECT_SOURCE_DIR}/../shared/testdata/tokenizers")
endif()
