#include "server/chat_completions.hpp"

#include "server/api_error.hpp"
#include "server/chat_prompt.hpp"
#include "server/engine_requests.hpp"
#include "server/logprobs_json.hpp"
#include "server/reasoning_splitter.hpp"
#include "server/response_common.hpp"

namespace fp4llm::server {

namespace {

// One choice's text so far, split into reasoning and answer.
struct ChatChoice {
  ReasoningSplitter splitter;
  std::string content, reasoning;
  Json logprobs = Json::array();
  std::string finish_reason;
  int64_t completion_tokens = 0;
};

std::vector<ChatChoice> make_choices(size_t n, const ServingModel& model, const ChatPrompt& prompt) {
  std::vector<ChatChoice> c;
  for (size_t i = 0; i < n; ++i) c.push_back({ReasoningSplitter(model.split_reasoning, prompt.opens_reasoning)});
  return c;
}

Json text_or_null(const std::string& s) { return s.empty() ? Json() : Json(s); }

Json complete(const ServingModel& model, const GenerationFields& f, const ChatPrompt& prompt, RequestStream& stream,
              const Heartbeat& alive) {
  auto choices = make_choices(size_t(f.n), model, prompt);
  Usage usage;
  std::string error;
  wait_for_all(stream, choices.size(), [&](RequestOutput& o) {
    ChatChoice& c = choices[size_t(o.index)];
    auto d = c.splitter.push(o.text);
    if (o.finish_reason) {
      auto rest = c.splitter.flush();
      d.reasoning += rest.reasoning;
      d.content += rest.content;
      c.finish_reason = *o.finish_reason;
      c.completion_tokens = o.completion_tokens;
      usage.prompt_tokens = o.prompt_tokens;
      usage.cached_tokens = o.cached_tokens;
      if (is_error(o)) error = o.error;
    }
    c.reasoning += d.reasoning;
    c.content += d.content;
    if (f.top_logprobs >= 0) append_chat_logprobs(c.logprobs, o.tokens, model.tokenizer);
  }, alive);
  if (!error.empty()) throw ApiError(500, "generation failed: " + error);
  Json out_choices = Json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    ChatChoice& c = choices[i];
    Json message{{"role", "assistant"}, {"content", c.content}};
    if (model.split_reasoning) message["reasoning_content"] = text_or_null(c.reasoning);
    message["tool_calls"] = Json::array();
    usage.completion_tokens += c.completion_tokens;
    out_choices.push_back(Json{{"index", i},
                               {"message", message},
                               {"logprobs", f.top_logprobs >= 0 ? Json{{"content", c.logprobs}} : Json()},
                               {"finish_reason", c.finish_reason}});
  }
  Json body{{"id", make_response_id("chatcmpl-")},
            {"object", "chat.completion"},
            {"created", unix_time_now()},
            {"model", model.name},
            {"choices", out_choices},
            {"usage", usage.json()}};
  return body;
}

// chat.completion.chunk events: per choice a first chunk with the role, then text deltas, then
// an empty delta carrying finish_reason; with include_usage a last chunk with no choices and
// the usage (and "usage": null in the others), then [DONE].
class ChatEvents final : public EventSource {
 public:
  ChatEvents(const ServingModel& model, const GenerationFields& f, const ChatPrompt& prompt,
             std::shared_ptr<RequestStream> stream)
      : model_(model), f_(f), stream_(std::move(stream)), choices_(make_choices(size_t(f.n), model, prompt)),
        id_(make_response_id("chatcmpl-")), created_(unix_time_now()) {}

  bool next(std::string& out, std::chrono::milliseconds timeout) override {
    if (!started_) {
      for (size_t i = 0; i < choices_.size(); ++i) out += chunk(i, Json{{"role", "assistant"}, {"content", ""}}, Json());
      started_ = true;
      return true;
    }
    std::vector<RequestOutput> outputs;
    stream_->pop(outputs, timeout);
    for (auto& o : outputs) on_output(o, out);
    if (finished_ < choices_.size()) return true;
    if (f_.include_usage) {
      Json usage_chunk = header();
      usage_chunk["choices"] = Json::array();
      usage_chunk["usage"] = usage_.json();
      out += sse_event(usage_chunk);
    }
    out += "data: [DONE]\n\n";
    return false;
  }

  void cancel() override { stream_->cancel(); }

 private:
  Json header() const {
    return Json{{"id", id_}, {"object", "chat.completion.chunk"}, {"created", created_}, {"model", model_.name}};
  }

  std::string chunk(size_t index, Json delta, Json finish_reason, Json logprobs = Json()) const {
    Json c = header();
    c["choices"] = Json::array({Json{{"index", index}, {"delta", std::move(delta)}, {"logprobs", std::move(logprobs)},
                                     {"finish_reason", std::move(finish_reason)}}});
    if (f_.include_usage) c["usage"] = Json();
    return sse_event(c);
  }

  void on_output(RequestOutput& o, std::string& out) {
    ChatChoice& c = choices_[size_t(o.index)];
    if (is_error(o)) out += sse_event(error_body(500, "generation failed: " + o.error));
    auto d = c.splitter.push(o.text);
    if (o.finish_reason) {
      auto rest = c.splitter.flush();
      d.reasoning += rest.reasoning;
      d.content += rest.content;
    }
    Json logprobs;
    if (f_.top_logprobs >= 0 && !o.tokens.empty()) {
      logprobs = Json{{"content", Json::array()}};
      append_chat_logprobs(logprobs["content"], o.tokens, model_.tokenizer);
    }
    if (!d.reasoning.empty() || !d.content.empty() || !logprobs.is_null()) {
      Json delta = Json::object();
      if (!d.reasoning.empty()) delta["reasoning_content"] = d.reasoning;
      if (!d.content.empty()) delta["content"] = d.content;
      out += chunk(size_t(o.index), delta, Json(), logprobs);
    }
    if (o.finish_reason) {
      out += chunk(size_t(o.index), Json::object(), *o.finish_reason);
      usage_.prompt_tokens = o.prompt_tokens;
      usage_.cached_tokens = o.cached_tokens;
      usage_.completion_tokens += o.completion_tokens;
      ++finished_;
    }
  }

  const ServingModel& model_;
  GenerationFields f_;
  std::shared_ptr<RequestStream> stream_;
  std::vector<ChatChoice> choices_;
  std::string id_;
  int64_t created_;
  bool started_ = false;
  size_t finished_ = 0;
  Usage usage_;
};

}  // namespace

Reply chat_completions(const Json& body, const ServingModel& model) {
  if (!body.is_object()) bad_request("the request body must be a JSON object");
  const GenerationFields f = parse_generation_fields(body, /*chat=*/true);
  check_model_name(f, model);
  const ChatPrompt prompt = chat_prompt(body, model);
  auto stream = submit_to_engine(model.engine, engine_requests(f, prompt.tokens, model));
  if (f.stream) return Reply{200, Json(), std::make_shared<ChatEvents>(model, f, prompt, std::move(stream))};
  // The answer is produced while the HTTP layer sends keep-alive spaces (see Reply::deferred).
  return Reply{200, Json(), nullptr, [&model, f, prompt, stream](const Heartbeat& alive) {
                 return complete(model, f, prompt, *stream, alive);
               }};
}

}  // namespace fp4llm::server
