/* Every phase callback runs, in order, with the accessors that make sense there working and the
 * others answering WRONG_PHASE; headers of the three blocks, body filters, peer, summary, user
 * data freed in request_end. */
#include "common.h"

static char origin[64];
static char order[512];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static volatile int failures;
static volatile int ends, allocs;
static const char *volatile want_method = "GET";

#define EXPECT(cond)                                                           \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: EXPECT failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                              \
    }                                                                          \
  } while (0)

static void mark(const char *tag) {
  pthread_mutex_lock(&mu);
  strncat(order, tag, sizeof order - strlen(order) - 1);
  strncat(order, " ", sizeof order - strlen(order) - 1);
  pthread_mutex_unlock(&mu);
}

static proxy_str S(const char *c) { return proxy_str_from_cstr(c); }

static void check_phase(proxy_session *s, uint32_t want) {
  uint32_t p = 0;
  EXPECT(proxy_session_phase(s, &p) == PROXY_OK && p == want);
}

/* A text accessor called twice hands out the same view: the text is built once and cached. */
static void check_cached(proxy_session *s, proxy_result (*get)(const proxy_session *, proxy_str *)) {
  proxy_str a = {0}, b = {0};
  EXPECT(get(s, &a) == PROXY_OK && get(s, &b) == PROXY_OK);
  EXPECT(a.len > 0 && a.ptr == b.ptr && a.len == b.len);
}

/* Request accessors work in every phase that has a session. */
static void check_request(proxy_session *s) {
  proxy_str v;
  uint32_t ver = 0;
  size_t n = 0;
  EXPECT(proxy_session_method(s, &v) == PROXY_OK && str_eq(v, want_method));
  EXPECT(proxy_session_path(s, &v) == PROXY_OK && str_eq(v, "/echo"));
  EXPECT(proxy_session_query(s, &v) == PROXY_OK && str_eq(v, "a=1"));
  EXPECT(proxy_session_uri(s, &v) == PROXY_OK && str_eq(v, "/echo?a=1"));
  EXPECT(proxy_session_version(s, &ver) == PROXY_OK && ver == 11);
  EXPECT(proxy_session_client_addr(s, &v) == PROXY_OK && v.len > 10 && memcmp(v.ptr, "127.0.0.1:", 10) == 0);
  EXPECT(proxy_session_server_addr(s, &v) == PROXY_OK && v.len > 10);
  check_cached(s, proxy_session_uri);
  check_cached(s, proxy_session_client_addr);
  check_cached(s, proxy_session_server_addr);
  EXPECT(proxy_session_header_count(s, PROXY_HEADERS_REQUEST, &n) == PROXY_OK && n >= 3);
  EXPECT(proxy_session_header_get(s, PROXY_HEADERS_REQUEST, S("X-Multi"), 1, &v, &n) == PROXY_OK &&
         str_eq(v, "two") && n == 2);
  EXPECT(proxy_session_header_get(s, PROXY_HEADERS_REQUEST, S("x-missing"), 0, &v, &n) == PROXY_NOT_FOUND && n == 0);
}

static proxy_action early(void *user, proxy_session *s) {
  int *data = (int *)malloc(sizeof(int));
  proxy_str v;
  (void)user;
  mark("early");
  check_phase(s, PROXY_PHASE_EARLY_REQUEST_FILTER);
  check_request(s);
  *data = 42;
  allocs++;
  EXPECT(proxy_session_set_user(s, data) == PROXY_OK);
  /* blocks that do not exist yet */
  EXPECT(proxy_session_header_get(s, PROXY_HEADERS_UPSTREAM_REQUEST, S("host"), 0, &v, NULL) == PROXY_WRONG_PHASE);
  EXPECT(proxy_session_header_get(s, PROXY_HEADERS_RESPONSE, S("host"), 0, &v, NULL) == PROXY_WRONG_PHASE);
  {
    proxy_bytes b;
    EXPECT(proxy_session_body(s, &b, NULL) == PROXY_WRONG_PHASE);
  }
  EXPECT(proxy_session_set_peer(s, NULL) == PROXY_NULL_PARAMETER);
  {
    uint32_t st;
    EXPECT(proxy_session_response_status(s, &st) == PROXY_WRONG_PHASE);
    EXPECT(proxy_session_set_response_status(s, 200) == PROXY_WRONG_PHASE);
    EXPECT(proxy_session_upstream_reused(s, &st) == PROXY_WRONG_PHASE);
    EXPECT(proxy_session_set_retry(s, 1) == PROXY_WRONG_PHASE);
  }
  EXPECT(proxy_session_error(s, &v) == PROXY_NOT_FOUND);
  return PROXY_CONTINUE;
}

static proxy_action request_filter(void *user, proxy_session *s) {
  proxy_header all[16];
  size_t n = 0;
  (void)user;
  mark("request");
  check_phase(s, PROXY_PHASE_REQUEST_FILTER);
  check_request(s);
  EXPECT(*(int *)proxy_session_get_user(s) == 42);
  EXPECT(proxy_session_headers(s, PROXY_HEADERS_REQUEST, all, 1, &n) == PROXY_TOO_SMALL && n >= 3);
  EXPECT(proxy_session_headers(s, PROXY_HEADERS_REQUEST, all, 16, &n) == PROXY_OK);
  {
    proxy_header h;
    EXPECT(proxy_session_header_nth(s, PROXY_HEADERS_REQUEST, 0, &h) == PROXY_OK && h.name.len > 0);
    EXPECT(proxy_session_header_nth(s, PROXY_HEADERS_REQUEST, 1000, &h) == PROXY_NOT_FOUND);
  }
  EXPECT(proxy_session_header_add(s, PROXY_HEADERS_REQUEST, S("x-added"), S("yes")) == PROXY_OK);
  EXPECT(proxy_session_header_remove(s, PROXY_HEADERS_REQUEST, S("x-drop")) == PROXY_OK);
  EXPECT(proxy_session_header_remove(s, PROXY_HEADERS_REQUEST, S("x-drop")) == PROXY_NOT_FOUND);
  EXPECT(proxy_session_set_peer(s, NULL) == PROXY_NULL_PARAMETER);
  {
    proxy_peer p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.address = S(origin);
    EXPECT(proxy_session_set_peer(s, &p) == PROXY_WRONG_PHASE);
  }
  return PROXY_CONTINUE;
}

static proxy_action upstream_peer(void *user, proxy_session *s) {
  uint32_t r = 9;
  (void)user;
  mark("peer");
  check_phase(s, PROXY_PHASE_UPSTREAM_PEER);
  check_request(s);
  EXPECT(proxy_session_retries(s, &r) == PROXY_OK && r == 0);
  EXPECT(proxy_session_respond(s, 200, NULL, 0, NULL, 0) == PROXY_WRONG_PHASE);
  return set_peer_str(s, origin) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

static proxy_action connected(void *user, proxy_session *s) {
  uint32_t reused = 7;
  (void)user;
  mark("connected");
  check_phase(s, PROXY_PHASE_CONNECTED_TO_UPSTREAM);
  EXPECT(proxy_session_upstream_reused(s, &reused) == PROXY_OK && reused <= 1);
  return PROXY_CONTINUE;
}

static proxy_action upstream_request(void *user, proxy_session *s) {
  proxy_str v;
  (void)user;
  mark("upstream_request");
  check_phase(s, PROXY_PHASE_UPSTREAM_REQUEST_FILTER);
  check_request(s);
  EXPECT(proxy_session_header_get(s, PROXY_HEADERS_UPSTREAM_REQUEST, S("x-added"), 0, &v, NULL) == PROXY_OK &&
         str_eq(v, "yes"));
  EXPECT(proxy_session_header_set(s, PROXY_HEADERS_UPSTREAM_REQUEST, S("x-upstream-only"), S("1")) == PROXY_OK);
  /* the downstream request is read-only now */
  EXPECT(proxy_session_header_set(s, PROXY_HEADERS_REQUEST, S("x-late"), S("1")) == PROXY_WRONG_PHASE);
  return PROXY_CONTINUE;
}

static proxy_action request_body(void *user, proxy_session *s) {
  (void)user;
  (void)s;
  mark("request_body");
  return PROXY_CONTINUE;
}

static proxy_action upstream_response(void *user, proxy_session *s) {
  uint32_t st = 0;
  (void)user;
  mark("upstream_response");
  check_phase(s, PROXY_PHASE_UPSTREAM_RESPONSE_FILTER);
  EXPECT(proxy_session_response_status(s, &st) == PROXY_OK && st == 200);
  EXPECT(proxy_session_header_set(s, PROXY_HEADERS_UPSTREAM_REQUEST, S("x"), S("1")) == PROXY_WRONG_PHASE);
  return PROXY_CONTINUE;
}

static proxy_action response(void *user, proxy_session *s) {
  (void)user;
  mark("response");
  check_phase(s, PROXY_PHASE_RESPONSE_FILTER);
  EXPECT(proxy_session_header_set(s, PROXY_HEADERS_RESPONSE, S("x-proxied-by"), S("libproxy-c")) == PROXY_OK);
  /* the body filter changes the length */
  EXPECT(proxy_session_header_remove(s, PROXY_HEADERS_RESPONSE, S("content-length")) == PROXY_OK);
  EXPECT(proxy_session_set_response_status(s, 201) == PROXY_OK);
  EXPECT(proxy_session_set_response_status(s, 42) == PROXY_INVALID_PARAMETER);
  return PROXY_CONTINUE;
}

static proxy_action upstream_response_body(void *user, proxy_session *s) {
  proxy_bytes b;
  uint32_t end = 9;
  (void)user;
  EXPECT(proxy_session_body(s, &b, &end) == PROXY_OK && end <= 1);
  /* the view goes back into the setter as is (a char view would be a pointer-sign error here) */
  EXPECT(proxy_session_set_body(s, b.ptr, b.len) == PROXY_OK);
  return PROXY_CONTINUE;
}

static proxy_action response_body(void *user, proxy_session *s) {
  proxy_bytes b;
  uint32_t end = 0;
  (void)user;
  EXPECT(proxy_session_body(s, &b, &end) == PROXY_OK);
  if (end) {
    /* what the getter hands out is what the setter takes: uint8_t bytes, no casts */
    const char tail[] = "<appended by response_body_filter>";
    uint8_t *buf = (uint8_t *)malloc(b.len + sizeof tail);
    if (b.len) memcpy(buf, b.ptr, b.len);
    memcpy(buf + b.len, tail, sizeof tail - 1);
    EXPECT(proxy_session_set_body(s, buf, b.len + sizeof tail - 1) == PROXY_OK);
    free(buf);
    mark("response_body_end");
  }
  return PROXY_CONTINUE;
}

static proxy_action logging(void *user, proxy_session *s) {
  proxy_summary sum;
  proxy_str v;
  uint32_t st;
  (void)user;
  mark("logging");
  check_phase(s, PROXY_PHASE_LOGGING);
  memset(&sum, 0, sizeof sum);
  sum.struct_size = sizeof sum;
  EXPECT(proxy_session_summary(s, &sum) == PROXY_OK);
  EXPECT(sum.status == 201 && sum.bytes_out > 0 && sum.total_us > 0);
  EXPECT(proxy_session_response_status(s, &st) == PROXY_OK && st == 201);
  EXPECT(proxy_session_header_get(s, PROXY_HEADERS_RESPONSE, S("x-proxied-by"), 0, &v, NULL) == PROXY_OK);
  EXPECT(proxy_session_header_set(s, PROXY_HEADERS_RESPONSE, S("x"), S("1")) == PROXY_WRONG_PHASE);
  EXPECT(proxy_session_error(s, &v) == PROXY_NOT_FOUND);
  /* A short (old) summary struct gets only its first fields. */
  {
    uint32_t small[2] = {8, 0};
    EXPECT(proxy_session_summary(s, (proxy_summary *)(void *)small) == PROXY_OK && small[1] == 201);
  }
  return PROXY_CONTINUE;
}

static proxy_action request_end(void *user, proxy_session *s) {
  proxy_str v;
  uint32_t p = 0;
  (void)user;
  EXPECT(proxy_session_phase(s, &p) == PROXY_OK && p == PROXY_PHASE_REQUEST_END);
  EXPECT(proxy_session_method(s, &v) == PROXY_WRONG_PHASE);
  free(proxy_session_get_user(s));
  ends++;
  mark("end");
  return PROXY_CONTINUE;
}

int main(int argc, char **argv) {
  proxy_http_callbacks cbs;
  proxy_server *srv;
  uint16_t port;
  char buf[16384];
  const char *req =
      "GET /echo?a=1 HTTP/1.1\r\nHost: test\r\nX-Multi: one\r\nX-Multi: two\r\nX-Drop: 1\r\n"
      "Connection: close\r\n\r\n";
  int i;
  CHECK(argc > 1);
  snprintf(origin, sizeof origin, "%s", argv[1]);
  cbs = callbacks_init(NULL);
  cbs.early_request_filter = early;
  cbs.request_filter = request_filter;
  cbs.upstream_peer = upstream_peer;
  cbs.connected_to_upstream = connected;
  cbs.upstream_request_filter = upstream_request;
  cbs.request_body_filter = request_body;
  cbs.upstream_response_filter = upstream_response;
  cbs.response_filter = response;
  cbs.upstream_response_body_filter = upstream_response_body;
  cbs.response_body_filter = response_body;
  cbs.logging = logging;
  cbs.request_end = request_end;
  srv = start_proxy(&cbs, 0, &port);

  CHECK(http_raw(port, req, buf, sizeof buf) == 201);
  for (i = 0; i < 200 && ends < 1; i++) sleep_ms(5);
  printf("order: %s\n", order);
  CHECK(strcmp(order, "early request peer connected upstream_request upstream_response response "
                      "response_body_end logging end ") == 0);
  CHECK(strstr(buf, "x-proxied-by: libproxy-c") != NULL);
  CHECK(strstr(buf, "x-upstream-only: 1") != NULL); /* echoed by the origin */
  CHECK(strstr(buf, "x-added: yes") != NULL);
  CHECK(strstr(buf, "x-drop") == NULL);
  CHECK(strstr(buf, "<appended by response_body_filter>") != NULL);
  CHECK(failures == 0);
  CHECK(ends == allocs);

  /* A POST body goes through request_body_filter. */
  order[0] = 0;
  {
    const char *post = "POST /echo?a=1 HTTP/1.1\r\nHost: t\r\nX-Multi: one\r\nX-Multi: two\r\n"
                       "X-Drop: 1\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    int before = ends;
    want_method = "POST";
    CHECK(http_raw(port, post, buf, sizeof buf) == 201);
    for (i = 0; i < 200 && ends == before; i++) sleep_ms(5);
    CHECK(strstr(order, "request_body") != NULL);
    CHECK(strstr(buf, "hello") != NULL);
  }
  OK(proxy_server_free(srv));
  CHECK(ends == allocs);
  CHECK(failures == 0 || (fprintf(stderr, "%d failures\n", failures), 0));
  puts("test_phases ok");
  return 0;
}
