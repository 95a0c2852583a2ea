/* Lifecycle, versions, NULL and invalid arguments, struct_size handling, resume of unknown ids,
 * free from inside a callback refused. */
#include "common.h"

static char origin[64];
static proxy_server *g_server;
static volatile int busy_seen;

static proxy_action to_origin(void *user, proxy_session *s) {
  proxy_peer p;
  (void)user;
  /* Calls that would wait for the workers are refused from a callback. */
  if (proxy_server_free(g_server) == PROXY_BUSY && proxy_server_shutdown(g_server, 0) == PROXY_BUSY &&
      proxy_server_run(g_server, 0) == PROXY_BUSY)
    busy_seen = 1;
  /* Unknown flags, a bad address and a too-small struct are refused. */
  memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.flags = 1u << 30;
  p.address = proxy_str_from_cstr(origin);
  if (proxy_session_set_peer(s, &p) != PROXY_INVALID_PARAMETER) return PROXY_ERROR;
  p.flags = 0;
  p.address = proxy_str_from_cstr("no port here");
  if (proxy_session_set_peer(s, &p) != PROXY_INVALID_PARAMETER) return PROXY_ERROR;
  p.address = proxy_str_from_cstr(origin);
  p.struct_size = 4;
  if (proxy_session_set_peer(s, &p) != PROXY_INVALID_PARAMETER) return PROXY_ERROR;
  if (proxy_session_set_peer(s, NULL) != PROXY_NULL_PARAMETER) return PROXY_ERROR;
  /* A newer host's longer proxy_peer: accepted while the bytes this library does not know are
   * zero, refused (not silently truncated) when one is set. */
  {
    struct {
      proxy_peer p;
      uint64_t newer_field;
    } big;
    memset(&big, 0, sizeof big);
    big.p.struct_size = (uint32_t)sizeof big;
    big.p.address = proxy_str_from_cstr(origin);
    if (proxy_session_set_peer(s, &big.p) != PROXY_OK) return PROXY_ERROR;
    big.newer_field = 1;
    if (proxy_session_set_peer(s, &big.p) != PROXY_UNSUPPORTED) return PROXY_ERROR;
  }
  /* An old host's shorter proxy_peer (up to `address`) is accepted. */
  p.struct_size = (uint32_t)(offsetof(proxy_peer, address) + sizeof(proxy_str));
  return proxy_session_set_peer(s, &p) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

static void *run_thread(void *arg) {
  proxy_result r = proxy_server_run((proxy_server *)arg, 0);
  return (void *)(size_t)r;
}

int main(int argc, char **argv) {
  proxy_server *srv = NULL;
  proxy_service *svc = NULL;
  proxy_http_callbacks cbs;
  uint16_t port = 0;
  char buf[8192];
  void *ret;
  pthread_t t;
  CHECK(argc > 1);
  snprintf(origin, sizeof origin, "%s", argv[1]);

  /* Versions and messages. */
  CHECK(strncmp(proxy_version(), "libproxy/", 9) == 0);
  CHECK((proxy_abi_version() >> 16) == PROXY_ABI_VERSION_MAJOR);
  CHECK((proxy_abi_version() & 0xffff) == PROXY_ABI_VERSION_MINOR);
  CHECK((proxy_features() & PROXY_FEATURE_PENDING) != 0);
  CHECK((proxy_features() & PROXY_FEATURE_TLS) != 0);
  CHECK((proxy_features() & PROXY_FEATURE_H2) != 0);
  CHECK(PROXY_ABI_VERSION_MINOR >= 4);
  CHECK(strcmp(proxy_result_message(PROXY_OK), "ok") == 0);
  CHECK(strcmp(proxy_result_message(PROXY_GONE), "the session has ended") == 0);
  CHECK(strcmp(proxy_result_message(123456), "unknown result") == 0);

  /* NULL arguments. */
  CHECK_RC(proxy_server_new(NULL), PROXY_NULL_PARAMETER);
  CHECK_RC(proxy_server_free(NULL), PROXY_OK);
  proxy_service_free(NULL);
  CHECK_RC(proxy_service_new(NULL, &svc), PROXY_NULL_PARAMETER);
  CHECK(svc == NULL);
  CHECK_RC(proxy_service_new("x", NULL), PROXY_NULL_PARAMETER);
  CHECK_RC(proxy_service_add_tcp(NULL, "127.0.0.1:0", NULL), PROXY_NULL_PARAMETER);
  CHECK_RC(proxy_server_start(NULL), PROXY_NULL_PARAMETER);
  CHECK_RC(proxy_server_run(NULL, 0), PROXY_NULL_PARAMETER);
  CHECK_RC(proxy_server_shutdown(NULL, 0), PROXY_NULL_PARAMETER);
  CHECK_RC(proxy_server_add_service(NULL, NULL), PROXY_NULL_PARAMETER);
  CHECK_RC(proxy_session_resume(NULL, 1, PROXY_CONTINUE), PROXY_NULL_PARAMETER);
  CHECK_RC(proxy_session_method(NULL, NULL), PROXY_NULL_PARAMETER);
  CHECK(proxy_session_get_user(NULL) == NULL);

  /* Invalid arguments: bad UTF-8, bad addresses, out-of-range settings. */
  CHECK_RC(proxy_service_new("bad\xff", &svc), PROXY_INVALID_PARAMETER);
  OK(proxy_service_new("svc", &svc));
  CHECK_RC(proxy_service_add_tcp(svc, "not an address", NULL), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_service_add_tcp(svc, "127.0.0.1:99999", NULL), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_service_add_uds(svc, ""), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_service_set_threads(svc, 0), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_service_set_timeout(svc, 999, 10), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_service_set_timeout(svc, PROXY_TIMEOUT_PENDING, 0), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_service_set_limit(svc, 999, 10), PROXY_INVALID_PARAMETER);
  /* h2c is never forwarded, whatever the host allows; other tokens may be. */
  CHECK_RC(proxy_service_allow_upgrade(svc, "h2c"), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_service_allow_upgrade(svc, "not a token"), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_service_allow_upgrade(svc, NULL), PROXY_NULL_PARAMETER);
  OK(proxy_service_allow_upgrade(svc, "foo/1"));
  OK(proxy_service_deny_upgrade(svc, "foo/1"));
  CHECK_RC(proxy_service_deny_upgrade(svc, "foo/1"), PROXY_NOT_FOUND);
  CHECK_RC(proxy_service_set_limit(svc, PROXY_LIMIT_MAX_HEADERS, 0), PROXY_INVALID_PARAMETER);
  OK(proxy_service_set_limit(svc, PROXY_LIMIT_MAX_RETRIES, 0));
  /* Slow request bodies: a total deadline, a minimum rate (0 turns it off), request buffering. */
  OK(proxy_service_set_timeout(svc, PROXY_TIMEOUT_BODY_TOTAL, 5000));
  OK(proxy_service_set_timeout(svc, PROXY_TIMEOUT_BODY_RATE_GRACE, 1000));
  OK(proxy_service_set_limit(svc, PROXY_LIMIT_BODY_MIN_RATE, 0));
  OK(proxy_service_set_limit(svc, PROXY_LIMIT_REQUEST_BUFFER, 1 << 20));
  /* Options: an unknown option or value is refused, each documented value is taken. */
  CHECK_RC(proxy_service_set_option(NULL, PROXY_OPTION_UNDERSCORE_FIELDS, 0), PROXY_NULL_PARAMETER);
  CHECK_RC(proxy_service_set_option(svc, 999, 0), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_service_set_option(svc, PROXY_OPTION_UNDERSCORE_FIELDS, 3), PROXY_INVALID_PARAMETER);
  OK(proxy_service_set_option(svc, PROXY_OPTION_UNDERSCORE_FIELDS, PROXY_UNDERSCORE_REFUSE));
  OK(proxy_service_set_option(svc, PROXY_OPTION_UNDERSCORE_FIELDS, PROXY_UNDERSCORE_FORWARD));
  OK(proxy_service_set_option(svc, PROXY_OPTION_UNDERSCORE_FIELDS, PROXY_UNDERSCORE_DROP));
  OK(proxy_service_set_work_stealing(svc, 0));
  OK(proxy_service_set_threads(svc, 2));
  cbs = callbacks_init(NULL);
  cbs.struct_size = 4; /* smaller than struct_size + user */
  CHECK_RC(proxy_service_set_callbacks(svc, &cbs), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_service_set_callbacks(svc, NULL), PROXY_NULL_PARAMETER);
  /* A host built against a shorter struct (only up to upstream_peer) is accepted; the fields
   * past its struct_size are never read, so garbage there must not matter. */
  cbs = callbacks_init(NULL);
  cbs.upstream_peer = to_origin;
  memset(&cbs.connected_to_upstream, 0xAB, sizeof cbs - offsetof(proxy_http_callbacks, connected_to_upstream));
  cbs.struct_size = (uint32_t)offsetof(proxy_http_callbacks, connected_to_upstream);
  OK(proxy_service_set_callbacks(svc, &cbs));
  OK(proxy_service_add_tcp(svc, "127.0.0.1:0", &port));
  CHECK(port != 0);
  CHECK_RC(proxy_server_add_service(NULL, svc), PROXY_NULL_PARAMETER); /* svc still ours */

  OK(proxy_server_new(&srv));
  g_server = srv;
  OK(proxy_server_add_service(srv, svc));
  OK(proxy_server_start(srv));
  CHECK_RC(proxy_server_start(srv), PROXY_WRONG_STATE);
  OK(proxy_service_new("late", &svc));
  CHECK_RC(proxy_server_add_service(srv, svc), PROXY_WRONG_STATE); /* consumed anyway */

  CHECK(http_get(port, "/echo", buf, sizeof buf) == 200);
  CHECK(strstr(buf, "GET /echo HTTP/1.1") != NULL);
  CHECK(busy_seen);

  /* Resume of ids that never existed; invalid actions. */
  CHECK_RC(proxy_session_resume(srv, 0, PROXY_CONTINUE), PROXY_GONE);
  CHECK_RC(proxy_session_resume(srv, 987654321, PROXY_CONTINUE), PROXY_GONE);
  CHECK_RC(proxy_session_resume(srv, 1, PROXY_PENDING), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_session_resume(srv, 1, 0), PROXY_INVALID_PARAMETER);

  /* run() blocks in another thread until shutdown() from this one. */
  CHECK(pthread_create(&t, NULL, run_thread, srv) == 0);
  sleep_ms(50);
  CHECK(http_get(port, "/echo", buf, sizeof buf) == 200);
  OK(proxy_server_shutdown(srv, 1000));
  CHECK(pthread_join(t, &ret) == 0);
  CHECK((proxy_result)(size_t)ret == PROXY_OK);
  OK(proxy_server_shutdown(srv, 0)); /* twice is fine */
  CHECK(http_get(port, "/echo", buf, sizeof buf) == -1); /* nobody listens any more */
  OK(proxy_server_free(srv));

  /* A server never started frees cleanly, with its services. */
  OK(proxy_server_new(&srv));
  OK(proxy_service_new("idle", &svc));
  OK(proxy_service_add_tcp(svc, "127.0.0.1:0", NULL));
  OK(proxy_server_add_service(srv, svc));
  OK(proxy_server_free(srv));
  /* A service never added frees cleanly. */
  OK(proxy_service_new("loose", &svc));
  proxy_service_free(svc);
  puts("test_lifecycle ok");
  return 0;
}
