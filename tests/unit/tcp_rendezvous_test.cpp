// The rendezvous that hands tensor parallelism's NCCL id from rank 0 to the other ranks
// (util/tcp_rendezvous.hpp), over real loopback sockets: every peer gets exactly the bytes the
// test chose, and each failure (missing peers, nobody listening, a stranger's greeting, a wrong
// length, an unknown host) is an Error naming it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <future>
#include <random>
#include <thread>
#include <vector>

#include "util/error.hpp"
#include "util/tcp_rendezvous.hpp"

using namespace std::chrono_literals;
using fp4llm::RendezvousServer;
using fp4llm::rendezvous_receive;

namespace {

std::vector<char> random_bytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<char> b(n);
  for (char& c : b) c = char(rng() & 0xFF);
  return b;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const fp4llm::Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST(TcpRendezvous, EveryPeerGetsTheSameBytes) {
  const std::vector<char> id = random_bytes(128, 7);
  RendezvousServer server;
  ASSERT_GT(server.port(), 0);
  std::vector<std::future<std::vector<char>>> peers;
  for (int r = 1; r < 4; ++r)
    peers.push_back(std::async(std::launch::async, [&] { return rendezvous_receive("127.0.0.1", server.port(), 128, 5s); }));
  server.serve(id, 3, 5s);
  for (auto& p : peers) EXPECT_EQ(p.get(), id);
}

TEST(TcpRendezvous, MissingPeersAreCounted) {
  RendezvousServer server;
  auto one = std::async(std::launch::async, [&] { return rendezvous_receive("127.0.0.1", server.port(), 16, 5s); });
  const std::string e = error_of([&] { server.serve(random_bytes(16, 1), 2, 300ms); });
  EXPECT_NE(e.find("1 of 2 peers connected"), std::string::npos) << e;
  EXPECT_EQ(one.get().size(), 16u);
}

TEST(TcpRendezvous, NobodyListeningTimesOut) {
  int port = 0;
  {
    RendezvousServer gone;
    port = gone.port();
  }
  const std::string e = error_of([&] { rendezvous_receive("127.0.0.1", port, 16, 200ms); });
  EXPECT_NE(e.find("cannot connect to 127.0.0.1:" + std::to_string(port)), std::string::npos) << e;
}

TEST(TcpRendezvous, WrongLengthAndUnknownHostAreNamed) {
  RendezvousServer server;
  auto served = std::async(std::launch::async, [&] { server.serve(random_bytes(128, 2), 1, 5s); });
  const std::string e = error_of([&] { rendezvous_receive("127.0.0.1", server.port(), 64, 5s); });
  EXPECT_NE(e.find("sent 128 bytes, 64 expected"), std::string::npos) << e;
  served.get();
  const std::string h = error_of([] { rendezvous_receive("no-such-host.invalid", 1, 16, 200ms); });
  EXPECT_NE(h.find("cannot resolve host 'no-such-host.invalid'"), std::string::npos) << h;
}

// A listener that is not ours answers with other bytes.
TEST(TcpRendezvous, AStrangersGreetingIsRefused) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::thread stranger([fd] {
    const int c = ::accept(fd, nullptr, nullptr);
    const char hello[] = "HTTP/1.1 200 OK\r\n\r\n";
    (void)!::send(c, hello, sizeof hello - 1, MSG_NOSIGNAL);
    ::close(c);
  });
  const std::string e = error_of([&] { rendezvous_receive("127.0.0.1", ntohs(addr.sin_port), 16, 2s); });
  stranger.join();
  ::close(fd);
  EXPECT_NE(e.find("is not an fp4llm rendezvous"), std::string::npos) << e;
}
