/* proxy_server_free from one thread while another is blocked in proxy_server_run (what a C++
 * destructor or a Go finalizer does): free stops the server, waits for run to return PROXY_OK,
 * and only then frees. Under ASan a run still waiting on the freed server crashes or hangs
 * (alarm). Twice: a plain run, and a run that also waits for signals. */
#include "common.h"

static char origin[64];

static proxy_action upstream_peer(void *user, proxy_session *s) {
  (void)user;
  return set_peer_str(s, origin) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

struct run_args {
  proxy_server *srv;
  uint32_t flags;
  proxy_result rc;
};

static void *run_thread(void *arg) {
  struct run_args *a = arg;
  a->rc = proxy_server_run(a->srv, a->flags);
  return NULL;
}

static void free_while_running(uint32_t flags) {
  proxy_server *srv = NULL;
  proxy_service *svc = NULL;
  proxy_http_callbacks cbs = callbacks_init(NULL);
  struct run_args a;
  uint16_t port = 0;
  char buf[8192];
  pthread_t t;
  cbs.upstream_peer = upstream_peer;
  OK(proxy_server_new(&srv));
  OK(proxy_service_new("free-while-run", &svc));
  OK(proxy_service_add_tcp(svc, "127.0.0.1:0", &port));
  OK(proxy_service_set_callbacks(svc, &cbs));
  OK(proxy_server_add_service(srv, svc));
  a.srv = srv;
  a.flags = flags;
  a.rc = 12345;
  CHECK(pthread_create(&t, NULL, run_thread, &a) == 0);
  /* Only proxy_server_run starts this server: an answer means the thread is inside run (the
   * endpoint is bound already, so the request waits in the backlog until then). */
  CHECK(http_get(port, "/echo", buf, sizeof buf) == 200);
  OK(proxy_server_free(srv));
  CHECK(pthread_join(t, NULL) == 0);
  CHECK_RC(a.rc, PROXY_OK);
  CHECK(http_get(port, "/echo", buf, sizeof buf) == -1);
}

int main(int argc, char **argv) {
  CHECK(argc > 1);
  snprintf(origin, sizeof origin, "%s", argv[1]);
  alarm(60); /* a run left waiting on freed memory may hang instead of crashing */
  free_while_running(0);
  free_while_running(PROXY_RUN_SIGNALS);
  puts("test_free_while_run ok");
  return 0;
}
