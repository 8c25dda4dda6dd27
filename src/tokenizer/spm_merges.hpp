// BPE merges for a SentencePiece vocabulary that has scores but no merge list (a GGUF "llama"
// vocabulary), derived the way Hugging Face derives them when it converts a SentencePiece model
// to tokenizer.json, so the same BPE loop then gives Hugging Face's ids.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace fp4llm::tok {

// `pieces[i]` is the piece of id i ("" for an id without one), `scores[i]` its SentencePiece
// score. Returns [[left, right], ...] in merge-rank order.
nlohmann::json spm_merges(const std::vector<std::string>& pieces, const std::vector<float>& scores);

}  // namespace fp4llm::tok
