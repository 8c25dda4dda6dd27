#include "tokenizer/post_processor.hpp"

#include <nlohmann/json.hpp>
#include <string>

#include "util/error.hpp"

namespace fp4llm::tok {

namespace {

// The ids of a TemplateProcessing special token, looked up by name in its special_tokens map.
std::vector<int32_t> special_ids(const nlohmann::json& special_tokens, const std::string& name) {
  if (!special_tokens.contains(name) || !special_tokens[name].contains("ids"))
    fail("post_processor TemplateProcessing: special token {:?} is not defined", name);
  return special_tokens[name]["ids"].get<std::vector<int32_t>>();
}

// A [token, id] pair of RobertaProcessing / BertProcessing.
int32_t pair_id(const nlohmann::json& j, const char* key, const std::string& type) {
  if (!j.contains(key) || !j[key].is_array() || j[key].size() != 2 || !j[key][1].is_number())
    fail("post_processor {}: '{}' must be [token, id]", type, key);
  return j[key][1].get<int32_t>();
}

}  // namespace

PostProcessor PostProcessor::from_json(const nlohmann::json& j) {
  PostProcessor p;
  if (!j.is_null()) p.add(j);
  return p;
}

void PostProcessor::add(const nlohmann::json& j) {
  const std::string type = j.value("type", "");
  if (type == "ByteLevel") return;  // only trims offsets
  if (type == "Sequence") {
    for (const auto& step : j.value("processors", nlohmann::json::array())) add(step);
    return;
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    if (!prefix_.empty() || !suffix_.empty())
      fail("post_processor Sequence: more than one processor adds special tokens");
    prefix_ = {pair_id(j, "cls", type)};
    suffix_ = {pair_id(j, "sep", type)};
    return;
  }
  if (type != "TemplateProcessing")
    fail("tokenizer.json: post_processor type '{}' is not supported (supported: "
         "TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence)",
         type);
  if (!prefix_.empty() || !suffix_.empty())
    fail("post_processor Sequence: more than one processor adds special tokens");
  bool seen_sequence = false;
  for (const auto& piece : j.value("single", nlohmann::json::array())) {
    if (piece.contains("Sequence")) {
      if (piece["Sequence"].value("id", "A") != "A" || seen_sequence)
        fail("post_processor TemplateProcessing: 'single' must hold sequence A exactly once");
      seen_sequence = true;
    } else if (piece.contains("SpecialToken")) {
      const auto ids = special_ids(j.value("special_tokens", nlohmann::json::object()),
                                   piece["SpecialToken"].value("id", ""));
      auto& side = seen_sequence ? suffix_ : prefix_;
      side.insert(side.end(), ids.begin(), ids.end());
    } else {
      fail("post_processor TemplateProcessing: unknown piece {}", piece.dump());
    }
  }
  if (!seen_sequence) fail("post_processor TemplateProcessing: 'single' has no sequence A");
}

}  // namespace fp4llm::tok
