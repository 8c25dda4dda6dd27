#include "util/tcp_rendezvous.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "util/error.hpp"

namespace fp4llm {

namespace {

constexpr char kMagic[8] = {'F', 'P', '4', 'L', 'L', 'M', 'R', 'V'};
using Clock = std::chrono::steady_clock;

// An owned socket, closed on every path out.
struct Socket {
  int fd = -1;
  explicit Socket(int f) : fd(f) {}
  ~Socket() {
    if (fd >= 0) ::close(fd);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
};

sockaddr_in resolve(const std::string& host, int port) {
  if (port < 0 || port > 65535) fail("rendezvous: port {} is out of range", port);
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found); rc != 0 || !found)
    fail("rendezvous: cannot resolve host '{}': {}", host, ::gai_strerror(rc));
  sockaddr_in addr = *reinterpret_cast<const sockaddr_in*>(found->ai_addr);
  ::freeaddrinfo(found);
  addr.sin_port = htons(uint16_t(port));
  return addr;
}

void send_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) fail("rendezvous: sending to a peer failed: {}", std::strerror(errno));
    data += n, size -= size_t(n);
  }
}

// True when `fd` is readable (a byte, or a connection to accept) before `deadline`.
bool readable_before(int fd, Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  pollfd p{fd, POLLIN, 0};
  return left > 0 && ::poll(&p, 1, int(left)) > 0;
}

// Reads exactly `size` bytes before `deadline`.
void receive_all(int fd, char* data, size_t size, Clock::time_point deadline) {
  while (size > 0) {
    if (!readable_before(fd, deadline)) fail("rendezvous: timed out waiting for the server's bytes");
    const ssize_t n = ::recv(fd, data, size, 0);
    if (n <= 0) fail("rendezvous: the server closed the connection {} bytes short", size);
    data += n, size -= size_t(n);
  }
}

}  // namespace

RendezvousServer::RendezvousServer(const std::string& host, int port) {
  const sockaddr_in addr = resolve(host, port);
  Socket s(::socket(AF_INET, SOCK_STREAM, 0));
  if (s.fd < 0) fail("rendezvous: socket: {}", std::strerror(errno));
  const int one = 1;
  ::setsockopt(s.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(s.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
    fail("rendezvous: cannot listen on {}:{}: {}", host, port, std::strerror(errno));
  if (::listen(s.fd, 64) != 0) fail("rendezvous: listen: {}", std::strerror(errno));
  sockaddr_in bound{};
  socklen_t len = sizeof bound;
  ::getsockname(s.fd, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.sin_port);
  std::swap(fd_, s.fd);
}

RendezvousServer::~RendezvousServer() {
  if (fd_ >= 0) ::close(fd_);
}

void RendezvousServer::serve(std::span<const char> payload, int peers, std::chrono::milliseconds timeout) {
  std::vector<char> frame(kMagic, kMagic + sizeof kMagic);
  const uint32_t size = htonl(uint32_t(payload.size()));
  frame.insert(frame.end(), reinterpret_cast<const char*>(&size), reinterpret_cast<const char*>(&size) + 4);
  frame.insert(frame.end(), payload.begin(), payload.end());
  const auto deadline = Clock::now() + timeout;
  for (int served = 0; served < peers; ++served) {
    if (!readable_before(fd_, deadline))
      fail("rendezvous: {} of {} peers connected to port {} within {} ms", served, peers, port_, timeout.count());
    Socket peer(::accept(fd_, nullptr, nullptr));
    if (peer.fd < 0) fail("rendezvous: accept: {}", std::strerror(errno));
    send_all(peer.fd, frame.data(), frame.size());
  }
}

std::vector<char> rendezvous_receive(const std::string& host, int port, size_t size, std::chrono::milliseconds timeout) {
  const sockaddr_in addr = resolve(host, port);
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    Socket s(::socket(AF_INET, SOCK_STREAM, 0));
    if (s.fd < 0) fail("rendezvous: socket: {}", std::strerror(errno));
    if (::connect(s.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
      char header[sizeof kMagic + 4];
      receive_all(s.fd, header, sizeof header, deadline);
      if (std::memcmp(header, kMagic, sizeof kMagic) != 0)
        fail("rendezvous: {}:{} is not an fp4llm rendezvous (unexpected greeting)", host, port);
      uint32_t length = 0;
      std::memcpy(&length, header + sizeof kMagic, 4);
      if (ntohl(length) != size) fail("rendezvous: {}:{} sent {} bytes, {} expected", host, port, ntohl(length), size);
      std::vector<char> out(size);
      receive_all(s.fd, out.data(), size, deadline);
      return out;
    }
    if (Clock::now() >= deadline)
      fail("rendezvous: cannot connect to {}:{} within {} ms: {}", host, port, timeout.count(), std::strerror(errno));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace fp4llm
