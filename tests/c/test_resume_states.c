/* Resume decisions across phases: a second resume of a pending phase that arrives while a later,
 * non-pending callback runs answers ALREADY (and is not taken for that callback); a resume while
 * nothing is pending answers WRONG_STATE; a later phase can still go PENDING and be resumed. */
#include "common.h"

static char origin[64];
static proxy_server *g_srv;
static volatile int mode;
static volatile uint64_t g_id;
static volatile int in_peer;        /* upstream_peer is running */
static volatile int second_done;    /* the thread's second resume has answered */
static volatile proxy_result first_rc, second_rc, wrong_state_rc;

static void *resumer(void *arg) {
  uint64_t id = *(uint64_t *)arg;
  int i;
  free(arg);
  sleep_ms(20);
  first_rc = proxy_session_resume(g_srv, id, PROXY_CONTINUE);
  /* Wait until the next phase's callback (which does not go pending) is running. */
  for (i = 0; i < 400 && !in_peer; i++) sleep_ms(5);
  second_rc = proxy_session_resume(g_srv, id, PROXY_CONTINUE);
  second_done = 1;
  return NULL;
}

static void *late_resumer(void *arg) {
  uint64_t id = *(uint64_t *)arg;
  free(arg);
  sleep_ms(20);
  proxy_session_resume(g_srv, id, PROXY_CONTINUE);
  return NULL;
}

static proxy_action early_request_filter(void *user, proxy_session *s) {
  uint64_t id = 0;
  (void)user;
  /* Asking for the id arms this callback's decision; returning CONTINUE disarms it. */
  if (proxy_session_id(s, &id) != PROXY_OK) return PROXY_ERROR;
  g_id = id;
  return PROXY_CONTINUE;
}

static proxy_action request_filter(void *user, proxy_session *s) {
  uint64_t *id;
  pthread_t t;
  (void)user;
  if (mode == 2) {
    /* Nothing is pending and this callback did not ask for the id. */
    wrong_state_rc = proxy_session_resume(g_srv, g_id, PROXY_CONTINUE);
    return PROXY_CONTINUE;
  }
  id = (uint64_t *)malloc(sizeof *id);
  if (proxy_session_id(s, id) != PROXY_OK) return PROXY_ERROR;
  if (pthread_create(&t, NULL, mode == 1 ? resumer : late_resumer, id) != 0) return PROXY_ERROR;
  pthread_detach(t);
  return PROXY_PENDING;
}

static proxy_action upstream_peer(void *user, proxy_session *s) {
  int i;
  (void)user;
  if (mode == 1) {
    in_peer = 1;
    /* Test only: hold this callback until the stale resume has been answered. */
    for (i = 0; i < 400 && !second_done; i++) sleep_ms(5);
  }
  return set_peer_str(s, origin) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

/* mode 3: request_filter pending + resumed, then upstream_request_filter pending + resumed by the
 * same id (fetched again there): both waits resume. */
static proxy_action upstream_request_filter(void *user, proxy_session *s) {
  uint64_t *id;
  pthread_t t;
  (void)user;
  if (mode != 3) return PROXY_CONTINUE;
  id = (uint64_t *)malloc(sizeof *id);
  if (proxy_session_id(s, id) != PROXY_OK) return PROXY_ERROR;
  if (pthread_create(&t, NULL, late_resumer, id) != 0) return PROXY_ERROR;
  pthread_detach(t);
  return PROXY_PENDING;
}

int main(int argc, char **argv) {
  proxy_http_callbacks cbs;
  uint16_t port;
  char buf[8192];
  CHECK(argc > 1);
  snprintf(origin, sizeof origin, "%s", argv[1]);
  cbs = callbacks_init(NULL);
  cbs.early_request_filter = early_request_filter;
  cbs.request_filter = request_filter;
  cbs.upstream_peer = upstream_peer;
  cbs.upstream_request_filter = upstream_request_filter;
  g_srv = start_proxy(&cbs, 2000, &port);

  mode = 1;
  CHECK(http_get(port, "/echo", buf, sizeof buf) == 200);
  CHECK(second_done);
  CHECK_RC(first_rc, PROXY_OK);
  CHECK_RC(second_rc, PROXY_ALREADY);
  /* After the end: GONE. */
  CHECK_RC(proxy_session_resume(g_srv, g_id, PROXY_CONTINUE), PROXY_GONE);

  mode = 2;
  CHECK(http_get(port, "/echo", buf, sizeof buf) == 200);
  CHECK_RC(wrong_state_rc, PROXY_WRONG_STATE);

  mode = 3;
  in_peer = 0;
  second_done = 0;
  CHECK(http_get(port, "/echo", buf, sizeof buf) == 200);
  CHECK_RC(first_rc, PROXY_OK);

  OK(proxy_server_free(g_srv));
  puts("test_resume_states ok");
  return 0;
}
