#include "server/completions.hpp"

#include <fmt/format.h>

#include "server/api_error.hpp"
#include "server/engine_requests.hpp"
#include "server/logprobs_json.hpp"
#include "server/response_common.hpp"
#include "util/error.hpp"

namespace fp4llm::server {

namespace {

struct Prompt {
  std::string text;  // for echo
  std::vector<int32_t> tokens;
};

std::vector<int32_t> token_list(const Json& list) {
  std::vector<int32_t> ids;
  for (const auto& t : list) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX)
      bad_request("'prompt' token ids must be non-negative integers", "prompt");
    ids.push_back(t.get<int32_t>());
  }
  return ids;
}

Prompt text_prompt(const std::string& text, const ServingModel& model) {
  try {
    return {text, model.tokenizer.encode(text)};  // the model's BOS where its tokenizer adds one
  } catch (const Error& e) {
    bad_request(fmt::format("'prompt' could not be tokenized: {}", e.what()), "prompt");
  }
}

std::vector<Prompt> parse_prompts(const Json& body, const ServingModel& model) {
  auto it = body.find("prompt");
  if (it == body.end() || it->is_null()) bad_request("'prompt' is required", "prompt");
  const Json& p = *it;
  if (p.is_string()) return {text_prompt(p.get<std::string>(), model)};
  if (!p.is_array() || p.empty())
    bad_request("'prompt' must be a string, an array of strings, or an array of token ids", "prompt");
  // One prompt of token ids (of any length), or a list of prompts.
  if (p[0].is_number()) return {Prompt{model.tokenizer.decode(token_list(p)), token_list(p)}};
  if (p.size() > kMaxPrompts) bad_request(fmt::format("'prompt' has more than {} prompts", kMaxPrompts), "prompt");
  std::vector<Prompt> out;
  for (const auto& item : p) {
    if (item.is_string()) out.push_back(text_prompt(item.get<std::string>(), model));
    else if (item.is_array()) out.push_back({model.tokenizer.decode(token_list(item)), token_list(item)});
    else bad_request("'prompt' must be a string, an array of strings, or an array of token ids", "prompt");
  }
  return out;
}

struct CompletionChoice {
  std::string text;
  CompletionLogprobs logprobs;
  size_t offset = 0;  // text_offset of the next token
  std::string finish_reason;
};

Json choice_json(size_t index, Json text, Json logprobs, Json finish_reason) {
  return Json{{"index", index}, {"text", std::move(text)}, {"logprobs", std::move(logprobs)},
              {"finish_reason", std::move(finish_reason)}};
}

Json complete(const ServingModel& model, const GenerationFields& f, const std::vector<Prompt>& prompts, bool echo,
              RequestStream& stream, const Heartbeat& alive) {
  std::vector<CompletionChoice> choices(prompts.size() * size_t(f.n));
  for (size_t i = 0; i < choices.size(); ++i) {
    if (echo) choices[i].text = prompts[i / size_t(f.n)].text;
    choices[i].offset = choices[i].text.size();
  }
  Usage usage;
  std::string error;
  wait_for_all(stream, choices.size(), [&](RequestOutput& o) {
    CompletionChoice& c = choices[size_t(o.index)];
    c.text += o.text;
    if (f.top_logprobs >= 0) c.logprobs.append(o.tokens, model.tokenizer, c.offset);
    if (!o.finish_reason) return;
    c.finish_reason = *o.finish_reason;
    usage.completion_tokens += o.completion_tokens;
    if (size_t(o.index) % size_t(f.n) == 0) {  // each prompt counted once
      usage.prompt_tokens += o.prompt_tokens;
      usage.cached_tokens += o.cached_tokens;
    }
    if (is_error(o)) error = o.error;
  }, alive);
  if (!error.empty()) throw ApiError(500, "generation failed: " + error);
  Json out = Json::array();
  for (size_t i = 0; i < choices.size(); ++i)
    out.push_back(choice_json(i, choices[i].text, f.top_logprobs >= 0 ? choices[i].logprobs.json() : Json(),
                              choices[i].finish_reason));
  Json body{{"id", make_response_id("cmpl-")}, {"object", "text_completion"}, {"created", unix_time_now()},
            {"model", model.name}, {"choices", out}, {"usage", usage.json()}};
  return body;
}

// text_completion events: text deltas, the finish_reason with the last one, optionally a usage
// chunk, then [DONE].
class CompletionEvents final : public EventSource {
 public:
  CompletionEvents(const ServingModel& model, const GenerationFields& f, std::vector<Prompt> prompts, bool echo,
                   std::shared_ptr<RequestStream> stream)
      : model_(model), f_(f), prompts_(std::move(prompts)), echo_(echo), stream_(std::move(stream)),
        offsets_(prompts_.size() * size_t(f.n), 0), id_(make_response_id("cmpl-")), created_(unix_time_now()) {}

  bool next(std::string& out, std::chrono::milliseconds timeout) override {
    if (echo_ && !echoed_) {
      for (size_t i = 0; i < offsets_.size(); ++i) {
        out += event(i, prompts_[i / size_t(f_.n)].text, Json(), Json());
        offsets_[i] = prompts_[i / size_t(f_.n)].text.size();
      }
      echoed_ = true;
      return true;
    }
    std::vector<RequestOutput> outputs;
    stream_->pop(outputs, timeout);
    for (auto& o : outputs) on_output(o, out);
    if (finished_ < offsets_.size()) return true;
    if (f_.include_usage) {
      Json u = header();
      u["choices"] = Json::array();
      u["usage"] = usage_.json();
      out += sse_event(u);
    }
    out += "data: [DONE]\n\n";
    return false;
  }

  void cancel() override { stream_->cancel(); }

 private:
  Json header() const {
    return Json{{"id", id_}, {"object", "text_completion"}, {"created", created_}, {"model", model_.name}};
  }
  std::string event(size_t index, const std::string& text, Json logprobs, Json finish_reason) const {
    Json c = header();
    c["choices"] = Json::array({choice_json(index, text, std::move(logprobs), std::move(finish_reason))});
    if (f_.include_usage) c["usage"] = Json();
    return sse_event(c);
  }
  void on_output(RequestOutput& o, std::string& out) {
    const size_t i = size_t(o.index);
    if (is_error(o)) out += sse_event(error_body(500, "generation failed: " + o.error));
    Json logprobs;
    if (f_.top_logprobs >= 0 && !o.tokens.empty()) {
      CompletionLogprobs lp;
      lp.append(o.tokens, model_.tokenizer, offsets_[i]);
      logprobs = lp.json();
    }
    if (!o.text.empty() || !logprobs.is_null() || o.finish_reason)
      out += event(i, o.text, logprobs, o.finish_reason ? Json(*o.finish_reason) : Json());
    if (!o.finish_reason) return;
    usage_.completion_tokens += o.completion_tokens;
    if (i % size_t(f_.n) == 0) {
      usage_.prompt_tokens += o.prompt_tokens;
      usage_.cached_tokens += o.cached_tokens;
    }
    ++finished_;
  }

  const ServingModel& model_;
  GenerationFields f_;
  std::vector<Prompt> prompts_;
  bool echo_, echoed_ = false;
  std::shared_ptr<RequestStream> stream_;
  std::vector<size_t> offsets_;
  std::string id_;
  int64_t created_;
  size_t finished_ = 0;
  Usage usage_;
};

}  // namespace

Reply completions(const Json& body, const ServingModel& model) {
  if (!body.is_object()) bad_request("the request body must be a JSON object");
  const GenerationFields f = parse_generation_fields(body, /*chat=*/false);
  check_model_name(f, model);
  const bool echo = opt_bool(body, "echo").value_or(false);
  if (echo && f.top_logprobs >= 0) bad_request("'echo' together with 'logprobs' is not supported", "echo");
  if (opt_string(body, "suffix")) bad_request("'suffix' is not supported by this model", "suffix");
  const auto best_of = opt_integer(body, "best_of", 1, kMaxChoices);
  if (best_of && *best_of != f.n) bad_request("'best_of' other than n is not supported", "best_of");
  std::vector<Prompt> prompts = parse_prompts(body, model);
  std::vector<EngineRequest> requests;
  for (const auto& p : prompts) {
    auto r = engine_requests(f, p.tokens, model);
    requests.insert(requests.end(), std::make_move_iterator(r.begin()), std::make_move_iterator(r.end()));
  }
  auto stream = submit_to_engine(model.engine, std::move(requests));
  if (f.stream)
    return Reply{200, Json(), std::make_shared<CompletionEvents>(model, f, std::move(prompts), echo, std::move(stream))};
  // The answer is produced while the HTTP layer sends keep-alive spaces (see Reply::deferred).
  return Reply{200, Json(), nullptr, [&model, f, prompts = std::move(prompts), echo, stream](const Heartbeat& alive) {
                 return complete(model, f, prompts, echo, *stream, alive);
               }};
}

}  // namespace fp4llm::server
