// `fp4llm tokenize`: encode text with a model's tokenizer, decode ids, or run a JSON-lines
// batch (one process for a whole test corpus or benchmark).
#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/utf8.hpp"
#include "util/error.hpp"
#include "util/text_file.hpp"

namespace fp4llm::cli {

namespace {

struct Args {
  std::string model_dir, text, text_file, ids_file, jsonl, output;
  bool has_text = false;  // TEXT was given (it may be empty); otherwise stdin is read
  bool json = false, no_special = false, no_add_special = false, decode = false,
       skip_special = false, timing = false;
};

// The input of a single run: a file, TEXT, or standard input.
std::string input_text(const Args& args, const std::string& file) {
  if (!file.empty()) return read_text_file(file);
  if (args.has_text) return args.text;
  std::ostringstream ss;
  ss << std::cin.rdbuf();
  return ss.str();
}

// Ids as a JSON array or separated by whitespace / commas.
std::vector<int32_t> parse_ids(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && s[first] == '[')
    return nlohmann::json::parse(s).get<std::vector<int32_t>>();
  std::vector<int32_t> ids;
  std::string item;
  std::istringstream in(s);
  while (in >> item) {
    std::istringstream field(item);
    std::string part;
    while (std::getline(field, part, ',')) {
      if (part.empty()) continue;
      size_t used = 0;
      int value = 0;
      try {
        value = std::stoi(part, &used);
      } catch (const std::exception&) {
      }
      if (used != part.size()) fail("--decode: {:?} is not a token id", part);
      ids.push_back(value);
    }
  }
  return ids;
}

struct StreamResult {
  std::string text;
  bool valid_pieces = true;  // every emitted piece was valid UTF-8 on its own
};

StreamResult stream_decode(const Tokenizer& t, const std::vector<int32_t>& ids, bool skip) {
  StreamingDetokenizer d(t, skip);
  StreamResult r;
  auto take = [&r](const std::string& piece) {
    r.valid_pieces = r.valid_pieces && tok::is_valid_utf8(piece);
    r.text += piece;
  };
  for (const int32_t id : ids) take(d.push(id));
  take(d.flush());
  return r;
}

// Decode results of `ids` in both skip modes, batch and streamed, into `out`.
void add_decodes(const Tokenizer& t, const std::vector<int32_t>& ids, nlohmann::json& out) {
  out["text"] = t.decode(ids, false);
  out["text_skip"] = t.decode(ids, true);
  const StreamResult plain = stream_decode(t, ids, false), skip = stream_decode(t, ids, true);
  out["stream"] = plain.text;
  out["stream_skip"] = skip.text;
  out["stream_valid_pieces"] = plain.valid_pieces && skip.valid_pieces;
}

// Each input line is {"text": ..., "parse_special"?, "add_special_tokens"?, "decode"?} or
// {"ids": [...]}; each output line holds "ids" and/or the decode results.
void run_jsonl(const Tokenizer& t, const Args& args, double load_s) {
  std::ifstream in(args.jsonl, std::ios::binary);
  if (!in) fail("cannot open {}", args.jsonl);
  std::ofstream file;
  if (!args.output.empty()) {
    file.open(args.output, std::ios::binary);
    if (!file) fail("cannot write {}", args.output);
  }
  std::ostream& out = args.output.empty() ? std::cout : file;
  double encode_s = 0;
  size_t encoded_bytes = 0, lines = 0;
  std::string line;
  while (std::getline(in, line)) {
    ++lines;
    if (line.empty()) continue;
    nlohmann::json request;
    try {
      request = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      fail("{} line {}: {}", args.jsonl, lines, e.what());
    }
    nlohmann::json result = nlohmann::json::object();
    if (request.contains("text")) {
      const std::string& text = request["text"].get_ref<const std::string&>();
      EncodeOptions options;
      options.parse_special = request.value("parse_special", !args.no_special);
      options.add_special_tokens = request.value("add_special_tokens", !args.no_add_special);
      const auto start = std::chrono::steady_clock::now();
      const std::vector<int32_t> ids = t.encode(text, options);
      encode_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      encoded_bytes += text.size();
      result["ids"] = ids;
      if (request.value("decode", false)) add_decodes(t, ids, result);
    } else if (request.contains("ids")) {
      add_decodes(t, request["ids"].get<std::vector<int32_t>>(), result);
    } else {
      fail("{} line {}: expected a \"text\" or an \"ids\" field", args.jsonl, lines);
    }
    out << result.dump() << '\n';
  }
  out.flush();
  if (args.timing)
    fmt::print(stderr, "{}\n",
               nlohmann::json{{"load_s", load_s}, {"encode_s", encode_s},
                              {"encoded_bytes", encoded_bytes}}
                   .dump());
}

void print_ids(const std::vector<int32_t>& ids, bool json) {
  if (json) {
    fmt::print("{}\n", nlohmann::json(ids).dump());
    return;
  }
  fmt::print("{}\n", fmt::join(ids, " "));
}

void run(const Args& args) {
  const auto start = std::chrono::steady_clock::now();
  const Tokenizer t = Tokenizer::load(args.model_dir);
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!args.jsonl.empty()) return run_jsonl(t, args, load_s);
  if (args.decode) {
    const std::string source = input_text(args, args.ids_file);
    const std::string text = t.decode(parse_ids(source), args.skip_special);
    if (args.json)
      fmt::print("{}\n", nlohmann::json(text).dump());
    else
      fmt::print("{}", text);
    return;
  }
  const std::string text = input_text(args, args.text_file);
  EncodeOptions options;
  options.parse_special = !args.no_special;
  options.add_special_tokens = !args.no_add_special;
  print_ids(t.encode(text, options), args.json);
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "tokenize",
      "Encode text to token ids with a model's tokenizer.json (byte-identical to Hugging Face\n"
      "tokenizers), or decode ids back to text with --decode.");
  cmd->add_option("MODEL_DIR", args->model_dir, "model folder holding tokenizer.json")
      ->required();
  auto* text = cmd->add_option(
      "TEXT", args->text, "text to encode (or ids to decode with --decode); default: stdin");
  cmd->add_option("--text-file", args->text_file, "encode the contents of this file");
  cmd->add_flag("--json", args->json, "print a JSON array (or a JSON string with --decode)");
  cmd->add_flag("--no-special", args->no_special,
                "encode special-token text such as <|im_end|> as plain text");
  cmd->add_flag("--no-add-special", args->no_add_special,
                "do not add the post-processor's tokens (such as <bos>)");
  cmd->add_flag("--decode", args->decode, "decode ids (TEXT or --ids-file) to text");
  cmd->add_option("--ids-file", args->ids_file,
                  "ids to decode: a JSON array or numbers separated by spaces or commas");
  cmd->add_flag("--skip-special", args->skip_special, "when decoding, drop special tokens");
  cmd->add_option("--jsonl", args->jsonl,
                  "batch mode: each line {\"text\": ...} or {\"ids\": [...]}; prints one JSON "
                  "result per line (ids; decode, decode with special tokens skipped, and the "
                  "streaming detokenizer's output)");
  cmd->add_option("--output", args->output, "batch mode: write results here, not stdout");
  cmd->add_flag("--timing", args->timing,
                "batch mode: print load and encode seconds as JSON on stderr");
  cmd->callback([args, text] {
    args->has_text = text->count() > 0;
    run(*args);
  });
}

}  // namespace fp4llm::cli
