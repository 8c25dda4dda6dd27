#include "server/http_server.hpp"

#include <fmt/format.h>
#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <thread>

#include "server/api_error.hpp"
#include "server/chat_completions.hpp"
#include "server/completions.hpp"
#include "server/prometheus_text.hpp"
#include "server/request_body.hpp"
#include "server/response_common.hpp"
#include "util/error.hpp"

namespace fp4llm::server {

namespace {

constexpr auto kWaitForOutput = std::chrono::milliseconds(1000);

void send_json(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) { send_json(res, e.status, e.body()); }

bool authorised(const httplib::Request& req, const HttpOptions& o) {
  return o.api_key.empty() || req.get_header_value("Authorization") == "Bearer " + o.api_key;
}

// Streams the events; a failed write means the client left, which cancels the requests. While
// nothing happens for a second an SSE comment is sent, so a vanished client is noticed even
// while its request waits in the queue.
void send_events(httplib::Response& res, std::shared_ptr<EventSource> events) {
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [events](size_t, httplib::DataSink& sink) {
        std::string text;
        const bool more = events->next(text, kWaitForOutput);
        if (text.empty() && more) text = ": keep-alive\n\n";
        if (!sink.write(text.data(), text.size())) {
          events->cancel();
          return false;
        }
        if (!more) sink.done();
        return true;
      },
      [events](bool success) {
        if (!success) events->cancel();
      });
}

// A non-streamed answer: spaces while it is generated (each a check that the client is still
// there), then the JSON. Errors found after the headers left can only be reported in the body.
void send_deferred_json(httplib::Response& res, DeferredJson deferred) {
  res.set_chunked_content_provider("application/json", [deferred = std::move(deferred)](size_t, httplib::DataSink& sink) {
    std::string body;
    try {
      body = deferred([&sink] { return sink.write(" ", 1); }).dump(-1, ' ', false, Json::error_handler_t::replace);
    } catch (const ClientGone&) {
      return false;
    } catch (const ApiError& e) {
      body = e.body().dump();
    } catch (const std::exception& e) {
      body = ApiError(500, fmt::format("internal error: {}", e.what())).body().dump();
    }
    sink.write(body.data(), body.size());
    sink.done();
    return true;
  });
}

using Handler = Reply (*)(const Json&, const ServingModel&);

void handle_generation(const httplib::Request& req, httplib::Response& res, const ServingModel& model,
                       const HttpOptions& options, Handler handler) {
  try {
    if (!authorised(req, options)) throw ApiError(401, "Incorrect API key provided.", {}, "invalid_api_key");
    Reply reply = handler(parse_request_body(req.body), model);
    if (reply.events) send_events(res, std::move(reply.events));
    else if (reply.deferred) send_deferred_json(res, std::move(reply.deferred));
    else send_json(res, reply.status, reply.body);
  } catch (const ApiError& e) {
    send_error(res, e);
  } catch (const std::exception& e) {
    send_error(res, ApiError(500, fmt::format("internal error: {}", e.what())));
  }
}

Json models_list(const ServingModel& model) {
  Json m{{"id", model.name},         {"object", "model"},         {"created", model.created},
         {"owned_by", "fp4llm"},     {"root", model.name},        {"parent", nullptr},
         {"max_model_len", model.max_model_len}};
  return Json{{"object", "list"}, {"data", Json::array({m})}};
}

void add_routes(httplib::Server& svr, ServingModel& model, const HttpOptions& o) {
  svr.Get("/health", [](const httplib::Request&, httplib::Response& res) { res.status = 200; });
  svr.Get("/metrics", [&model](const httplib::Request&, httplib::Response& res) {
    res.set_content(prometheus_text(model.engine.metrics(), model.name), "text/plain; version=0.0.4");
  });
  svr.Get("/v1/models", [&model, &o](const httplib::Request& req, httplib::Response& res) {
    if (!authorised(req, o)) return send_error(res, ApiError(401, "Incorrect API key provided.", {}, "invalid_api_key"));
    send_json(res, 200, models_list(model));
  });
  svr.Post("/v1/chat/completions", [&model, &o](const httplib::Request& req, httplib::Response& res) {
    handle_generation(req, res, model, o, &chat_completions);
  });
  svr.Post("/v1/completions", [&model, &o](const httplib::Request& req, httplib::Response& res) {
    handle_generation(req, res, model, o, &completions);
  });
  // Whatever the library answers by itself (unknown route 404, wrong method, body over the limit
  // 413) gets an OpenAI-style body too.
  svr.set_error_handler([&o](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message = fmt::format("{} {} failed with status {}", req.method, req.path, res.status);
    if (res.status == 404) message = fmt::format("no route {} {}", req.method, req.path);
    if (res.status == 413) message = fmt::format("the request body exceeds the limit of {} bytes", o.max_body_bytes);
    send_json(res, res.status, error_body(res.status, message));
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_json(res, 500, error_body(500, "internal error: " + what));
  });
}

}  // namespace

void block_shutdown_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client that vanished must not kill the server
}

void serve_http(ServingModel& model, const HttpOptions& options) {
  httplib::Server svr;
  const size_t threads = size_t(std::max(options.threads, 1));
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  svr.set_payload_max_length(options.max_body_bytes);
  svr.set_keep_alive_max_count(10000);
  add_routes(svr, model, options);

  int port = options.port;
  if (port == 0) port = svr.bind_to_any_port(options.host);
  else if (!svr.bind_to_port(options.host, port)) port = -1;
  if (port <= 0) fail("cannot listen on {}:{} (address in use, or not an address of this machine?)", options.host, options.port);

  std::thread waiter([&svr] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    sigwait(&set, &sig);
    svr.stop();
  });
  fmt::print(stderr, "fp4llm serve: model '{}' listening on http://{}:{}\n", model.name, options.host, port);
  const bool ok = svr.listen_after_bind();
  if (waiter.joinable()) {
    pthread_kill(waiter.native_handle(), SIGTERM);  // wake the waiter if listen ended by itself
    waiter.join();
  }
  if (!ok) fail("the HTTP server stopped with an error");
  fmt::print(stderr, "fp4llm serve: stopped\n");
}

}  // namespace fp4llm::server
