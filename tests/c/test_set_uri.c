/* proxy_session_set_uri: rewrite in request_filter (seen by later accessors and upstream), rewrite
 * of the upstream request only in upstream_request_filter, invalid targets refused with nothing
 * changed, WRONG_PHASE where it makes no sense. */
#include "common.h"

static char origin[64];
static volatile int failures;

#define EXPECT(c)                                                              \
  do {                                                                         \
    if (!(c)) {                                                                \
      fprintf(stderr, "%s:%d: EXPECT failed: %s\n", __FILE__, __LINE__, #c);   \
      failures++;                                                              \
    }                                                                          \
  } while (0)

static proxy_result set(proxy_session *s, const char *u) {
  return proxy_session_set_uri(s, proxy_str_from_cstr(u));
}

static proxy_action request_filter(void *user, proxy_session *s) {
  proxy_str v;
  proxy_str nul = {"/a\0b", 4};
  (void)user;
  EXPECT(proxy_session_uri(s, &v) == PROXY_OK && str_eq(v, "/old?x=1"));
  /* Refused, nothing changed: not origin-form, injection, fragment, spaces, empty, NULL. */
  EXPECT(set(s, "http://evil/x") == PROXY_INVALID_PARAMETER);
  EXPECT(set(s, "evil") == PROXY_INVALID_PARAMETER);
  EXPECT(set(s, "/a\r\nX-Injected: 1") == PROXY_INVALID_PARAMETER);
  EXPECT(set(s, "/a b") == PROXY_INVALID_PARAMETER);
  EXPECT(set(s, "/a#frag") == PROXY_INVALID_PARAMETER);
  EXPECT(set(s, "") == PROXY_INVALID_PARAMETER);
  EXPECT(proxy_session_set_uri(s, nul) == PROXY_INVALID_PARAMETER);
  {
    proxy_str bad = {NULL, 3};
    EXPECT(proxy_session_set_uri(s, bad) == PROXY_NULL_PARAMETER);
  }
  EXPECT(proxy_session_set_uri(NULL, proxy_str_from_cstr("/x")) == PROXY_NULL_PARAMETER);
  EXPECT(proxy_session_uri(s, &v) == PROXY_OK && str_eq(v, "/old?x=1"));
  /* Accepted: later accessors see it. */
  EXPECT(set(s, "/echo/new?y=2") == PROXY_OK);
  EXPECT(proxy_session_uri(s, &v) == PROXY_OK && str_eq(v, "/echo/new?y=2"));
  EXPECT(proxy_session_path(s, &v) == PROXY_OK && str_eq(v, "/echo/new"));
  EXPECT(proxy_session_query(s, &v) == PROXY_OK && str_eq(v, "y=2"));
  return PROXY_CONTINUE;
}

static proxy_action upstream_peer(void *user, proxy_session *s) {
  proxy_str v;
  (void)user;
  EXPECT(proxy_session_uri(s, &v) == PROXY_OK && str_eq(v, "/echo/new?y=2"));
  return set_peer_str(s, origin) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

static proxy_action upstream_request_filter(void *user, proxy_session *s) {
  proxy_str v;
  (void)user;
  /* Only the upstream request changes; the downstream request keeps its target. */
  EXPECT(set(s, "/echo/upstream-only") == PROXY_OK);
  EXPECT(proxy_session_uri(s, &v) == PROXY_OK && str_eq(v, "/echo/new?y=2"));
  return PROXY_CONTINUE;
}

static proxy_action response_filter(void *user, proxy_session *s) {
  (void)user;
  EXPECT(set(s, "/late") == PROXY_WRONG_PHASE);
  return PROXY_CONTINUE;
}

static proxy_action logging(void *user, proxy_session *s) {
  (void)user;
  EXPECT(set(s, "/late") == PROXY_WRONG_PHASE);
  return PROXY_CONTINUE;
}

int main(int argc, char **argv) {
  proxy_http_callbacks cbs = callbacks_init(NULL);
  proxy_server *srv;
  uint16_t port = 0;
  char buf[8192];
  CHECK(argc > 1);
  snprintf(origin, sizeof origin, "%s", argv[1]);
  cbs.request_filter = request_filter;
  cbs.upstream_peer = upstream_peer;
  cbs.upstream_request_filter = upstream_request_filter;
  cbs.response_filter = response_filter;
  cbs.logging = logging;
  srv = start_proxy(&cbs, 0, &port);
  CHECK(http_get(port, "/old?x=1", buf, sizeof buf) == 200);
  /* The origin's echo dump starts with the request line it received. */
  CHECK(strstr(buf, "GET /echo/upstream-only HTTP/1.1\n") != NULL);
  OK(proxy_server_shutdown(srv, 1000));
  OK(proxy_server_free(srv));
  CHECK(failures == 0);
  printf("set_uri ok\n");
  return 0;
}
