// One rank hands the same bytes to the others over TCP: the NCCL communicator id that tensor
// parallelism's ranks join with (issue 8). Today the ranks are threads of one process and the
// exchange runs over a local socket; ranks on other hosts would run the same exchange against a
// reachable address. Framed as "FP4LLMRV", a 4-byte length, the bytes; every failure (no peer
// within the timeout, a refused or cut connection, a frame that is not ours) names what went wrong.
#pragma once

#include <chrono>
#include <span>
#include <string>
#include <vector>

namespace fp4llm {

class RendezvousServer {
 public:
  // Listens on host:port (port 0: any free one, see port()).
  explicit RendezvousServer(const std::string& host = "127.0.0.1", int port = 0);
  ~RendezvousServer();
  RendezvousServer(const RendezvousServer&) = delete;
  RendezvousServer& operator=(const RendezvousServer&) = delete;

  int port() const { return port_; }
  // Sends `payload` to each of `peers` connections as they come; fails when they have not all come
  // within `timeout`, saying how many did.
  void serve(std::span<const char> payload, int peers, std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
  int port_ = 0;
};

// Connects to host:port, retrying until `timeout` (the server may not listen yet), and returns
// the `size` bytes it sends.
std::vector<char> rendezvous_receive(const std::string& host, int port, size_t size, std::chrono::milliseconds timeout);

}  // namespace fp4llm
