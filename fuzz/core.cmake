fp4llm_add_fuzzer(safetensors_fuzz ${CMAKE_CURRENT_SOURCE_DIR}/safetensors_fuzz.cpp)
fp4llm_add_fuzzer(config_fuzz ${CMAKE_CURRENT_SOURCE_DIR}/config_fuzz.cpp)
fp4llm_add_fuzzer(gguf_fuzz ${CMAKE_CURRENT_SOURCE_DIR}/gguf_fuzz.cpp)
