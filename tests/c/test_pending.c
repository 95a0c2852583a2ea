/* PENDING / resume: from another thread (which also edits the session while pending), resume
 * before the callback returned, resume after the end (GONE), double resume (ALREADY), pending
 * deadline (500, then GONE), a response set while pending. */
#include "common.h"

static char origin[64];
static proxy_server *g_srv;
static volatile int mode;
static volatile uint64_t last_id;
static volatile int thread_ok;

struct job {
  proxy_session *s;
  uint64_t id;
  int32_t action;
};

static int wait_flag(volatile int *f) {
  int i;
  for (i = 0; i < 200 && !*f; i++) sleep_ms(5);
  return *f;
}

static void *resumer(void *arg) {
  struct job *j = (struct job *)arg;
  proxy_str v;
  int ok = 1;
  sleep_ms(50);
  /* While pending, this thread may read and change the session. */
  ok &= proxy_session_path(j->s, &v) == PROXY_OK && str_eq(v, "/echo");
  ok &= proxy_session_header_set(j->s, PROXY_HEADERS_REQUEST, proxy_str_from_cstr("x-decided-by"),
                                 proxy_str_from_cstr("thread")) == PROXY_OK;
  if (j->action == PROXY_RESPONDED) {
    const char body[] = "answered while pending";
    ok &= proxy_session_respond(j->s, 403, NULL, 0, (const uint8_t *)body, sizeof body - 1) == PROXY_OK;
  }
  ok &= proxy_session_resume(g_srv, j->id, j->action) == PROXY_OK;
  ok &= proxy_session_resume(g_srv, j->id, j->action) == PROXY_ALREADY;
  thread_ok = ok;
  free(j);
  return NULL;
}

static proxy_action request_filter(void *user, proxy_session *s) {
  uint64_t id = 0;
  (void)user;
  if (proxy_session_id(s, &id) != PROXY_OK || id == 0) return PROXY_ERROR;
  last_id = id;
  if (mode == 1 || mode == 4) {
    pthread_t t;
    struct job *j = (struct job *)malloc(sizeof *j);
    j->s = s;
    j->id = id;
    j->action = mode == 1 ? PROXY_CONTINUE : PROXY_RESPONDED;
    if (pthread_create(&t, NULL, resumer, j) != 0) return PROXY_ERROR;
    pthread_detach(t);
    return PROXY_PENDING;
  }
  if (mode == 2) {
    /* Resumed before returning: kept until we return PENDING, nothing runs early. */
    if (proxy_session_resume(g_srv, id, PROXY_CONTINUE) != PROXY_OK) return PROXY_ERROR;
    if (proxy_session_resume(g_srv, id, PROXY_CONTINUE) != PROXY_ALREADY) return PROXY_ERROR;
    return PROXY_PENDING;
  }
  if (mode == 3) return PROXY_PENDING; /* never resumed: the deadline fails it */
  return PROXY_CONTINUE;
}

static proxy_action upstream_peer(void *user, proxy_session *s) {
  (void)user;
  return set_peer_str(s, origin) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

int main(int argc, char **argv) {
  proxy_http_callbacks cbs;
  uint16_t port;
  char buf[8192];
  uint64_t id;
  CHECK(argc > 1);
  snprintf(origin, sizeof origin, "%s", argv[1]);
  cbs = callbacks_init(NULL);
  cbs.request_filter = request_filter;
  cbs.upstream_peer = upstream_peer;
  g_srv = start_proxy(&cbs, 300, &port);

  mode = 1; /* resume from another thread, which edited the request */
  CHECK(http_get(port, "/echo", buf, sizeof buf) == 200);
  CHECK(strstr(buf, "x-decided-by: thread") != NULL);
  CHECK(wait_flag(&thread_ok));
  /* after the end */
  CHECK_RC(proxy_session_resume(g_srv, last_id, PROXY_CONTINUE), PROXY_GONE);

  mode = 2; /* resume before return */
  CHECK(http_get(port, "/echo", buf, sizeof buf) == 200);
  CHECK_RC(proxy_session_resume(g_srv, last_id, PROXY_CONTINUE), PROXY_GONE);

  mode = 3; /* deadline */
  CHECK(http_get(port, "/echo", buf, sizeof buf) == 500);
  id = last_id;
  CHECK_RC(proxy_session_resume(g_srv, id, PROXY_CONTINUE), PROXY_GONE);

  mode = 4; /* respond while pending, resume with RESPONDED */
  thread_ok = 0;
  CHECK(http_get(port, "/echo", buf, sizeof buf) == 403);
  CHECK(strstr(buf, "answered while pending") != NULL);
  CHECK(wait_flag(&thread_ok));

  /* Many concurrent pending requests. */
  mode = 1;
  {
    int i;
    for (i = 0; i < 20; i++) CHECK(http_get(port, "/echo", buf, sizeof buf) == 200);
  }
  OK(proxy_server_free(g_srv));
  puts("test_pending ok");
  return 0;
}
