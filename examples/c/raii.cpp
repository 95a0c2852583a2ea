// A small C++ RAII wrapper over proxy.h: unique_ptr handles, exceptions from result codes, and a
// lambda-free static trampoline. Usage: raii LISTEN UPSTREAM
#include <proxy.h>

#include <cstring>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

namespace px {

struct error : std::runtime_error {
  proxy_result code;
  explicit error(proxy_result c) : std::runtime_error(proxy_result_message(c)), code(c) {}
};

inline void check(proxy_result r) {
  if (r != PROXY_OK) throw error(r);
}

struct server_deleter {
  void operator()(proxy_server *s) const noexcept { proxy_server_free(s); }
};
struct service_deleter {
  void operator()(proxy_service *s) const noexcept { proxy_service_free(s); }
};

class service {
 public:
  explicit service(const std::string &name) {
    proxy_service *s = nullptr;
    check(proxy_service_new(name.c_str(), &s));
    p_.reset(s);
  }
  uint16_t listen(const std::string &addr) {
    uint16_t port = 0;
    check(proxy_service_add_tcp(p_.get(), addr.c_str(), &port));
    return port;
  }
  void callbacks(const proxy_http_callbacks &c) { check(proxy_service_set_callbacks(p_.get(), &c)); }
  proxy_service *release() { return p_.release(); }

 private:
  std::unique_ptr<proxy_service, service_deleter> p_;
};

class server {
 public:
  server() {
    proxy_server *s = nullptr;
    check(proxy_server_new(&s));
    p_.reset(s);
  }
  void add(service &&svc) { check(proxy_server_add_service(p_.get(), svc.release())); }
  void run() { check(proxy_server_run(p_.get(), PROXY_RUN_SIGNALS)); }

 private:
  std::unique_ptr<proxy_server, server_deleter> p_;
};

}  // namespace px

struct app {
  std::string upstream;

  // Exceptions must never cross into libproxy: catch everything, fail closed.
  static proxy_action upstream_peer(void *user, proxy_session *s) noexcept {
    try {
      auto *self = static_cast<app *>(user);
      proxy_peer p;
      std::memset(&p, 0, sizeof p);
      p.struct_size = sizeof p;
      p.address = proxy_str_from_cstr(self->upstream.c_str());
      px::check(proxy_session_set_peer(s, &p));
      return PROXY_CONTINUE;
    } catch (...) {
      return PROXY_ERROR;
    }
  }
};

int main(int argc, char **argv) {
  if (argc < 3) {
    std::cerr << "usage: " << argv[0] << " LISTEN UPSTREAM\n";
    return 2;
  }
  try {
    static app a{argv[2]};
    proxy_http_callbacks cbs;
    std::memset(&cbs, 0, sizeof cbs);
    cbs.struct_size = sizeof cbs;
    cbs.user = &a;
    cbs.upstream_peer = &app::upstream_peer;
    px::server srv;
    px::service svc("raii");
    std::cout << "listening on port " << svc.listen(argv[1]) << std::endl;
    svc.callbacks(cbs);
    srv.add(std::move(svc));
    srv.run();
  } catch (const px::error &e) {
    std::cerr << "libproxy: " << e.what() << " (" << e.code << ")\n";
    return 1;
  }
  return 0;
}
