/* proxy_peer_check: the validation proxy_session_set_peer makes, outside a session, with the
 * reason in proxy_last_error. */
#include "common.h"

static proxy_result check_addr(const char *addr, uint32_t flags) {
  proxy_peer p;
  memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.address = proxy_str_from_cstr(addr);
  p.flags = flags;
  return proxy_peer_check(&p);
}

int main(void) {
  char why[256];
  CHECK(check_addr("127.0.0.1:80", 0) == PROXY_OK);
  CHECK(check_addr("[::1]:8080", 0) == PROXY_OK);
  CHECK(check_addr("example.com:443", PROXY_PEER_TLS) == PROXY_OK);
  CHECK(check_addr("/run/x.sock", 0) == PROXY_OK);
  CHECK(check_addr("garbage", 0) == PROXY_INVALID_PARAMETER);
  proxy_last_error(why, sizeof why);
  CHECK(strstr(why, "host:port") != NULL);
  CHECK(check_addr("example.com:70000", 0) == PROXY_INVALID_PARAMETER);
  CHECK(check_addr("127.0.0.1:80", PROXY_PEER_TLS_NO_VERIFY) == PROXY_INVALID_PARAMETER);
  CHECK(proxy_peer_check(NULL) == PROXY_NULL_PARAMETER);
  puts("test_peer_check ok");
  return 0;
}
