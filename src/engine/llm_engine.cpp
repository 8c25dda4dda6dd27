#include "engine/llm_engine.hpp"

#include <algorithm>
#include <random>

#include "engine/token_logprobs.hpp"
#include "util/parallel_for.hpp"

namespace fp4llm {

namespace {
double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
}  // namespace

LlmEngine::LlmEngine(Backend& backend, const Tokenizer& tokenizer, const EngineConfig& config)
    : backend_(backend),
      tokenizer_(tokenizer),
      config_(config),
      blocks_(config.num_blocks),
      window_blocks_(config.num_window_blocks > 0 ? std::optional<BlockManager>(config.num_window_blocks) : std::nullopt),
      scheduler_(config.scheduler, blocks_, window_blocks_ ? &*window_blocks_ : nullptr),
      seed_base_(std::random_device{}()) {
  if (config_.max_model_len > config_.num_blocks * KvCacheConfig::kBlockSize)
    fail("--max-model-len {} does not fit the KV cache ({} blocks of {} tokens)", config_.max_model_len,
         config_.num_blocks, KvCacheConfig::kBlockSize);
  local_.kv_blocks_total = config_.num_blocks;
  local_.kv_window_blocks_total = config_.num_window_blocks;
  published_ = local_;
  thread_ = std::thread([this] { loop(); });
}

LlmEngine::~LlmEngine() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  for (auto* s : scheduler_.all()) s->stream().push(s->end("abort", "the server is shutting down"));
  for (auto& s : inbox_) s->stream().push(s->end("abort", "the server is shutting down"));
}

void LlmEngine::validate(const EngineRequest& r) const {
  const int64_t n = int64_t(r.prompt.size());
  if (n == 0) fail("the prompt is empty");
  if (n >= config_.max_model_len)
    fail("the prompt has {} tokens, but the maximum context length (--max-model-len) is {} tokens, "
         "which must also hold at least one generated token",
         n, config_.max_model_len);
  const int64_t vocab = backend_.config().vocab_size;
  for (int32_t t : r.prompt)
    if (t < 0 || t >= vocab) fail("token id {} is outside the vocabulary (size {})", t, vocab);
  if (r.max_tokens < 1) fail("max_tokens must be at least 1, got {}", r.max_tokens);
  if (r.top_logprobs > 20) fail("top_logprobs must be at most 20, got {}", r.top_logprobs);
  r.sampling.validate();
}

std::shared_ptr<RequestStream> LlmEngine::submit(std::vector<EngineRequest> requests) {
  if (requests.empty()) fail("no request to submit");
  for (const auto& r : requests) validate(r);
  if (queued_.load() + int64_t(requests.size()) > config_.max_queued_requests)
    throw EngineBusy(fmt::format("{} requests are already waiting (--max-queued-requests {}); retry later",
                                 queued_.load(), config_.max_queued_requests));
  auto stream = std::make_shared<RequestStream>();
  std::vector<std::unique_ptr<Sequence>> seqs;
  for (size_t i = 0; i < requests.size(); ++i) {
    const uint64_t id = next_id_++;
    seqs.push_back(std::make_unique<Sequence>(id, int32_t(i), std::move(requests[i]), stream, tokenizer_,
                                              config_.max_model_len, seed_base_ + id * 0x9e3779b97f4a7c15ull));
  }
  {
    std::lock_guard lock(mutex_);
    if (stop_) throw EngineBusy("the server is shutting down");
    for (auto& s : seqs) inbox_.push_back(std::move(s));
    queued_ += int64_t(requests.size());
  }
  wake_.notify_one();
  return stream;
}

EngineMetrics LlmEngine::metrics() const {
  std::lock_guard lock(metrics_mutex_);
  return published_;
}

void LlmEngine::loop() {
  while (true) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || !inbox_.empty() || !scheduler_.empty(); });
      if (stop_) return;
      for (auto& s : inbox_) scheduler_.add(std::move(s));
      inbox_.clear();
    }
    step();
  }
}

void LlmEngine::step() {
  // Requests whose client went away leave before the step, freeing their blocks.
  scheduler_.remove_if([&](Sequence& s) {
    if (!s.stream().cancelled()) return false;
    record_finish(s, s.end("abort"));
    return true;
  });
  const auto chunks = scheduler_.schedule();
  if (!chunks.empty()) run_batch(chunks);
  scheduler_.remove_if([](Sequence&) { return false; });  // the finished ones
  queued_ = scheduler_.num_waiting() + [&] {
    std::lock_guard lock(mutex_);
    return int64_t(inbox_.size());
  }();
  publish_metrics();
}

void LlmEngine::run_batch(const std::vector<ScheduledChunk>& chunks) {
  ForwardBatch batch;
  for (const auto& c : chunks) {
    const Sequence& s = *c.sequence;
    batch.sequences.push_back(
        {std::span(s.tokens()).subspan(size_t(s.num_computed), size_t(c.num_tokens)), s.num_computed, s.block_table,
         s.window_table});
  }
  // What the step's samplers need from the backend: greedy ids when all are plain greedy (on the
  // GPU only the ids come back), candidates when none has penalties (a GPU backend sends those
  // instead of the whole vocabulary), else whole rows; logprobs always need whole rows.
  Sampler::Need need = Sampler::Need::kGreedyId;
  for (const auto& c : chunks)
    need = std::max(need, c.sequence->request().top_logprobs >= 0 ? Sampler::Need::kWholeRow : c.sequence->sampler().need());
  const bool greedy = need == Sampler::Need::kGreedyId, narrowed = need == Sampler::Need::kCandidates;
  std::vector<int32_t> greedy_ids;
  try {
    if (greedy) {
      greedy_ids = backend_.forward_greedy(batch);
    } else if (narrowed) {
      std::vector<float> temperatures;
      for (const auto& c : chunks) temperatures.push_back(float(c.sequence->sampler().narrowing_temperature()));
      backend_.forward_candidates(batch, temperatures, candidates_);
    } else {
      backend_.forward(batch, logits_);
    }
  } catch (const std::exception& e) {
    // A backend failure ends this step's requests with an error; the server stays up.
    for (const auto& c : chunks) {
      auto out = c.sequence->end("error", e.what());
      record_finish(*c.sequence, out);
      c.sequence->stream().push(std::move(out));
    }
    return;
  }
  ++local_.steps;
  const size_t vocab = size_t(backend_.config().vocab_size);
  std::vector<size_t> ready;  // chunks that completed their sequence's tokens: sample those
  for (size_t i = 0; i < chunks.size(); ++i) {
    scheduler_.mark_computed(chunks[i]);
    if (chunks[i].sequence->num_uncomputed() == 0) ready.push_back(i);
  }
  // Sampling a 150k vocabulary costs milliseconds per sequence; sequences are independent, so
  // they are sampled in parallel, then emitted in order.
  std::vector<GeneratedToken> tokens(ready.size());
  parallel_for(int64_t(ready.size()), 2, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const size_t i = ready[size_t(r)];
      Sampler& sampler = chunks[i].sequence->sampler();
      tokens[size_t(r)] = greedy     ? GeneratedToken{greedy_ids[i], 0, {}}
                          : narrowed ? GeneratedToken{sampler.sample_candidates(candidates_.ids_of(i), candidates_.logits_of(i)), 0, {}}
                                     : sample(*chunks[i].sequence, std::span(logits_).subspan(i * vocab, vocab));
    }
  });
  for (size_t r = 0; r < ready.size(); ++r) emit(*chunks[ready[r]].sequence, std::move(tokens[r]));
}

GeneratedToken LlmEngine::sample(Sequence& s, std::span<float> logits) {
  const int32_t top = s.request().top_logprobs;
  std::vector<float> raw;
  if (top >= 0) raw.assign(logits.begin(), logits.end());  // the sampler edits logits
  const auto& tokens = s.tokens();
  const auto prompt = std::span(tokens).first(size_t(s.prompt_len()));
  const auto generated = std::span(tokens).subspan(size_t(s.prompt_len()));
  const int32_t id = s.sampler().sample(logits, prompt, generated);
  return top >= 0 ? token_logprobs(raw, id, top) : GeneratedToken{id, 0, {}};
}

void LlmEngine::emit(Sequence& s, GeneratedToken token) {
  const auto now = Clock::now();
  if (!s.first_token) {
    s.first_token = now;
    local_.prompt_tokens += s.prompt_len();  // once per request, however often it was recomputed
    local_.time_to_first_token.observe(seconds(now - s.arrival));
  } else {
    local_.inter_token_latency.observe(seconds(now - *s.last_token));
  }
  s.last_token = now;
  ++local_.generation_tokens;
  RequestOutput out = s.accept(std::move(token));
  if (out.finish_reason) record_finish(s, out);
  s.stream().push(std::move(out));
}

void LlmEngine::record_finish(const Sequence& s, const RequestOutput& out) {
  ++local_.finished[*out.finish_reason];
  local_.e2e_request_latency.observe(seconds(Clock::now() - s.arrival));
}

void LlmEngine::publish_metrics() {
  local_.running = scheduler_.num_running();
  local_.waiting = queued_.load();
  local_.kv_blocks_used = blocks_.num_used();
  local_.kv_blocks_cached = blocks_.num_cached();
  if (window_blocks_) local_.kv_window_blocks_used = window_blocks_->num_used();
  const auto& c = scheduler_.counters();
  local_.preemptions = c.preemptions;
  local_.prefix_cache_queries = c.prefix_queries;
  local_.prefix_cache_hits = c.prefix_hits;
  std::lock_guard lock(metrics_mutex_);
  published_ = local_;
}

}  // namespace fp4llm
