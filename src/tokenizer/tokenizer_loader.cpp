#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tokenizer/gguf_tokenizer_files.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/tokenizer_impl.hpp"
#include "util/error.hpp"

namespace fp4llm {

namespace {

// Whole-file read, then parse: several times faster than parsing from a stream, which matters
// for a 33 MB tokenizer.json.
nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open {}", path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  try {
    return nlohmann::json::parse(buffer.str());
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON: {}", path.string(), e.what());
  }
}

// tokenizer_config.json writes special tokens as a string or as {"content": ...}.
std::optional<std::string> config_token(const nlohmann::json& config, const char* key) {
  if (!config.is_object() || !config.contains(key) || config[key].is_null()) return std::nullopt;
  const auto& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  fail("tokenizer_config.json {}: expected a string or {{\"content\": ...}}", key);
}

std::optional<int32_t> config_token_id(const Tokenizer::Impl& t, const nlohmann::json& config,
                                       const char* key) {
  const auto token = config_token(config, key);
  if (!token) return std::nullopt;
  if (const auto id = t.added.token_to_id(*token)) return id;
  if (const auto id = t.model->token_to_id(*token)) return id;
  fail("tokenizer_config.json {} {:?} is not in the vocabulary", key, *token);
}

void add_unique(std::vector<int32_t>& ids, int32_t id) {
  if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
}

std::vector<int32_t> generation_eos_ids(const nlohmann::json& generation_config) {
  std::vector<int32_t> ids;
  if (!generation_config.is_object() || !generation_config.contains("eos_token_id")) return ids;
  const auto& v = generation_config["eos_token_id"];
  if (v.is_number_integer()) ids.push_back(v.get<int32_t>());
  if (v.is_array())
    for (const auto& id : v)
      if (id.is_number_integer()) ids.push_back(id.get<int32_t>());
  return ids;
}

void check_top_level(const nlohmann::json& j) {
  if (!j.is_object()) fail("tokenizer.json: expected a JSON object");
  if (j.contains("version") && j["version"] != "1.0")
    fail("tokenizer.json: version {} is not supported (only \"1.0\")", j["version"].dump());
  for (const char* key : {"truncation", "padding"})
    if (j.contains(key) && !j[key].is_null())
      fail("tokenizer.json: '{}' is set; fp4llm encodes without truncation or padding and "
           "does not support it",
           key);
  if (!j.contains("model")) fail("tokenizer.json: missing 'model'");
}

nlohmann::json field(const nlohmann::json& j, const char* key) {
  return j.contains(key) ? j[key] : nlohmann::json();
}

// When tokenizer_config.json asks for a BOS token that the post-processor does not add,
// transformers' Llama / Gemma tokenizers add it; so do we, exactly once.
void apply_add_bos_token(Tokenizer::Impl& t, const nlohmann::json& config) {
  if (!config.is_object() || !config.value("add_bos_token", false) || !t.bos) return;
  const auto& prefix = t.post_processor.prefix();
  if (std::find(prefix.begin(), prefix.end(), *t.bos) == prefix.end())
    t.post_processor.prepend(*t.bos);
}

}  // namespace

Tokenizer Tokenizer::from_json(const nlohmann::json& j, const nlohmann::json& config,
                               const nlohmann::json& generation_config) {
  try {
    return build(j, config, generation_config);
  } catch (const nlohmann::json::exception& e) {
    // A field of the wrong JSON type: report it as the bad input it is.
    fail("tokenizer.json or tokenizer_config.json: unexpected value: {}", e.what());
  }
}

Tokenizer Tokenizer::build(const nlohmann::json& j, const nlohmann::json& config,
                           const nlohmann::json& generation_config) {
  check_top_level(j);
  auto t = std::make_shared<Impl>();
  t->normalizer = tok::make_normalizer(field(j, "normalizer"));
  t->pre_tokenizer = tok::make_pre_tokenizer(field(j, "pre_tokenizer"));
  t->model = tok::BpeModel::from_json(j["model"]);
  t->added.load(field(j, "added_tokens"), *t->model, t->normalizer.get());
  t->post_processor = tok::PostProcessor::from_json(field(j, "post_processor"));
  t->decoder = tok::Decoder::from_json(field(j, "decoder"));
  t->bos = config_token_id(*t, config, "bos_token");
  t->eos = config_token_id(*t, config, "eos_token");
  if (t->eos) t->stop_ids.push_back(*t->eos);
  for (const int32_t id : generation_eos_ids(generation_config)) add_unique(t->stop_ids, id);
  apply_add_bos_token(*t, config);
  return Tokenizer(std::move(t));
}

Tokenizer Tokenizer::load(const std::filesystem::path& path) {
  if (std::filesystem::is_regular_file(path) && path.extension() == ".gguf") {
    const GgufTokenizerFiles f = read_gguf_tokenizer_files(path);
    try {
      return from_json(f.tokenizer_json, nlohmann::json(f.tokenizer_config), f.generation_config);
    } catch (const Error& e) {
      fail("{} (tokenizer from GGUF metadata): {}", path.string(), e.what());
    }
  }
  const bool is_dir = std::filesystem::is_directory(path);
  const std::filesystem::path file = is_dir ? path / "tokenizer.json" : path;
  const std::filesystem::path dir = is_dir ? path : path.parent_path();
  if (!std::filesystem::exists(file)) fail("{}: no tokenizer.json found", path.string());
  auto optional_json = [&dir](const char* name) {
    const auto p = dir / name;
    return std::filesystem::exists(p) ? read_json(p) : nlohmann::json();
  };
  const nlohmann::json tokenizer_json = read_json(file);
  try {
    return from_json(tokenizer_json, optional_json("tokenizer_config.json"),
                     optional_json("generation_config.json"));
  } catch (const Error& e) {
    fail("{}: {}", file.string(), e.what());
  }
}

}  // namespace fp4llm
