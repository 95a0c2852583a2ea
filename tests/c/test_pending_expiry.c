/* A host thread that still holds a pending proxy_session* after the pending deadline fired (or
 * after the client went away) may keep using it until it resumes: every accessor answers GONE,
 * the resume answers GONE and releases it. Run under ASan: no use-after-free. */
#include "common.h"

static char origin[64];
static proxy_server *g_srv;
static volatile int mode;
static volatile int done_count;
static volatile int all_gone = 1;

struct job {
  proxy_session *s;
  uint64_t id;
  long delay_ms;
};

#define EXPECT_GONE(call)                                                        \
  do {                                                                           \
    proxy_result r_ = (call);                                                    \
    if (r_ != PROXY_GONE) {                                                      \
      fprintf(stderr, "%s:%d: %s = %u, want GONE\n", __FILE__, __LINE__, #call, \
              (unsigned)r_);                                                     \
      all_gone = 0;                                                              \
    }                                                                            \
  } while (0)

static void *late_host(void *arg) {
  struct job *j = (struct job *)arg;
  proxy_str v;
  proxy_header h;
  size_t n;
  uint32_t u;
  uint64_t id;
  proxy_summary sum;
  sleep_ms(j->delay_ms); /* well past the 100 ms pending deadline: the request has ended */
  EXPECT_GONE(proxy_session_path(j->s, &v));
  EXPECT_GONE(proxy_session_method(j->s, &v));
  EXPECT_GONE(proxy_session_header_count(j->s, PROXY_HEADERS_REQUEST, &n));
  EXPECT_GONE(proxy_session_header_nth(j->s, PROXY_HEADERS_REQUEST, 0, &h));
  EXPECT_GONE(proxy_session_header_set(j->s, PROXY_HEADERS_REQUEST, proxy_str_from_cstr("x-late"),
                                       proxy_str_from_cstr("1")));
  EXPECT_GONE(proxy_session_respond(j->s, 200, NULL, 0, NULL, 0));
  EXPECT_GONE(proxy_session_version(j->s, &u));
  EXPECT_GONE(proxy_session_id(j->s, &id));
  EXPECT_GONE(proxy_session_set_user(j->s, NULL));
  memset(&sum, 0, sizeof sum);
  sum.struct_size = sizeof sum;
  EXPECT_GONE(proxy_session_summary(j->s, &sum));
  (void)proxy_session_get_user(j->s); /* readable, no crash */
  EXPECT_GONE(proxy_session_resume(g_srv, j->id, PROXY_CONTINUE));
  /* The handle is released now; the id stays GONE. */
  EXPECT_GONE(proxy_session_resume(g_srv, j->id, PROXY_CONTINUE));
  free(j);
  __sync_fetch_and_add(&done_count, 1);
  return NULL;
}

static proxy_action request_filter(void *user, proxy_session *s) {
  struct job *j;
  pthread_t t;
  (void)user;
  if (mode == 0) return PROXY_CONTINUE;
  j = (struct job *)malloc(sizeof *j);
  j->s = s;
  j->delay_ms = 500;
  if (proxy_session_id(s, &j->id) != PROXY_OK) return PROXY_ERROR;
  if (pthread_create(&t, NULL, late_host, j) != 0) return PROXY_ERROR;
  pthread_detach(t);
  return PROXY_PENDING;
}

static proxy_action upstream_peer(void *user, proxy_session *s) {
  (void)user;
  return set_peer_str(s, origin) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

/* Sends a request and closes at once (the client goes away while the session is pending). */
static void hit_and_run(uint16_t port) {
  struct sockaddr_in a;
  const char req[] = "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n";
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(fd >= 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
  CHECK(write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1));
  sleep_ms(30);
  close(fd);
}

int main(int argc, char **argv) {
  proxy_http_callbacks cbs;
  uint16_t port;
  char buf[8192];
  int i;
  CHECK(argc > 1);
  snprintf(origin, sizeof origin, "%s", argv[1]);
  cbs = callbacks_init(NULL);
  cbs.request_filter = request_filter;
  cbs.upstream_peer = upstream_peer;
  g_srv = start_proxy(&cbs, 100, &port);

  /* The deadline fires (500) while a host thread holds the session. */
  mode = 1;
  for (i = 0; i < 4; i++) CHECK(http_get(port, "/echo", buf, sizeof buf) == 500);
  /* The client disconnects while the session is pending. */
  for (i = 0; i < 4; i++) hit_and_run(port);
  for (i = 0; i < 3000 && done_count < 8; i++) sleep_ms(10);
  CHECK(done_count == 8);
  CHECK(all_gone);

  /* The server still serves. */
  mode = 0;
  CHECK(http_get(port, "/echo", buf, sizeof buf) == 200);

  /* Shutdown while a session is pending: its holder still gets GONE, then free releases all. */
  mode = 1;
  hit_and_run(port);
  sleep_ms(50);
  OK(proxy_server_shutdown(g_srv, 0));
  for (i = 0; i < 3000 && done_count < 9; i++) sleep_ms(10);
  CHECK(done_count == 9);
  CHECK(all_gone);
  OK(proxy_server_free(g_srv));
  puts("test_pending_expiry ok");
  return 0;
}
