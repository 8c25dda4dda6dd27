// libFuzzer target: arbitrary bytes as the body of POST /v1/chat/completions and
// /v1/completions, through the real handlers (JSON parse, field checks, chat template with the
// real Qwen3 tokenizer files, engine submission). The backend is a stand-in whose forward pass
// fails, so each accepted request ends at once through the engine's error path. Every input
// must end in a reply or an ApiError; anything else (another exception, a sanitizer report)
// is a crash.
#include <cstdint>
#include <string_view>

#include "engine/llm_engine.hpp"
#include "server/api_error.hpp"
#include "server/chat_completions.hpp"
#include "server/completions.hpp"
#include "server/request_body.hpp"
#include "template/chat_template.hpp"
#include "tokenizer/tokenizer.hpp"

namespace {

using namespace fp4llm;

class FailingBackend final : public Backend {
 public:
  explicit FailingBackend(int64_t vocab) { config_.vocab_size = vocab; }
  const ModelConfig& config() const override { return config_; }
  void forward(const ForwardBatch&, std::vector<float>&) override { throw Error("fuzz: no model"); }

 private:
  ModelConfig config_;
};

struct World {
  Tokenizer tokenizer = Tokenizer::load(FP4LLM_FUZZ_TOKENIZERS_DIR "/qwen3");
  FailingBackend backend{tokenizer.vocab_size()};
  LlmEngine engine{backend, tokenizer, EngineConfig{{8, 256, true}, 512, 64, 64}};
  server::ServingModel model{"m", tokenizer, ChatTemplate::load(FP4LLM_FUZZ_TOKENIZERS_DIR "/qwen3"), {},
                             tokenizer.stop_ids(), 512, true, engine, 0};
};

void drain(const server::Reply& reply) {
  if (reply.deferred) reply.deferred([] { return true; });
  if (!reply.events) return;
  std::string out;
  while (reply.events->next(out, std::chrono::milliseconds(1000))) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World world;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  for (auto handler : {&server::chat_completions, &server::completions}) {
    try {
      drain(handler(server::parse_request_body(body), world.model));
    } catch (const server::ApiError&) {
    }
  }
  return 0;
}
