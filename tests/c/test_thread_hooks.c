/* proxy_service_set_thread_hooks: on_start runs once on every worker thread before any callback
 * there, on_stop once per started thread at shutdown, for isolated runtimes, one worker, and a
 * work-stealing runtime. */
#include "common.h"

static char origin[64];
static pthread_key_t hooked; /* non-NULL on threads where on_start ran and on_stop did not */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int starts, stops, stop_without_start, unhooked_callbacks, double_start;
static int tag; /* the `user` pointer the hooks must see */

static void on_start(void *user) {
  pthread_mutex_lock(&mu);
  if (user != &tag) unhooked_callbacks++;
  if (pthread_getspecific(hooked) != NULL) double_start++;
  starts++;
  pthread_mutex_unlock(&mu);
  pthread_setspecific(hooked, &tag);
}

static void on_stop(void *user) {
  pthread_mutex_lock(&mu);
  if (user != &tag) unhooked_callbacks++;
  if (pthread_getspecific(hooked) == NULL) stop_without_start++;
  stops++;
  pthread_mutex_unlock(&mu);
  pthread_setspecific(hooked, NULL);
}

static void check_hooked(void) {
  if (pthread_getspecific(hooked) == NULL) {
    pthread_mutex_lock(&mu);
    unhooked_callbacks++;
    pthread_mutex_unlock(&mu);
  }
}

static proxy_action request_filter(void *user, proxy_session *s) {
  (void)user;
  (void)s;
  check_hooked();
  return PROXY_CONTINUE;
}

static proxy_action upstream_peer(void *user, proxy_session *s) {
  (void)user;
  check_hooked();
  return set_peer_str(s, origin) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

static proxy_action logging(void *user, proxy_session *s) {
  (void)user;
  (void)s;
  check_hooked();
  return PROXY_CONTINUE;
}

static int read_starts(void) {
  int n;
  pthread_mutex_lock(&mu);
  n = starts;
  pthread_mutex_unlock(&mu);
  return n;
}

/* One server with `threads` workers, work stealing `steal`; checks the counts. */
static void run_case(uint32_t threads, uint32_t steal) {
  proxy_server *srv = NULL;
  proxy_service *svc = NULL;
  proxy_http_callbacks cbs = callbacks_init(NULL);
  uint16_t port = 0;
  char buf[4096];
  int i;
  starts = stops = 0;
  cbs.request_filter = request_filter;
  cbs.upstream_peer = upstream_peer;
  cbs.logging = logging;
  OK(proxy_server_new(&srv));
  OK(proxy_service_new("hooks", &svc));
  OK(proxy_service_add_tcp(svc, "127.0.0.1:0", &port));
  OK(proxy_service_set_threads(svc, threads));
  OK(proxy_service_set_work_stealing(svc, steal));
  OK(proxy_service_set_callbacks(svc, &cbs));
  OK(proxy_service_set_thread_hooks(svc, on_start, on_stop, &tag));
  OK(proxy_server_add_service(srv, svc));
  OK(proxy_server_start(srv));
  /* Isolated threads run on_start as they come up, maybe just after start returned. */
  for (i = 0; i < 200 && read_starts() < (int)threads; i++) sleep_ms(5);
  /* Enough connections to reach every worker. */
  for (i = 0; i < 20; i++) CHECK(http_get(port, "/hooks", buf, sizeof buf) == 200);
  pthread_mutex_lock(&mu);
  if (starts != (int)threads) fprintf(stderr, "threads=%u steal=%u: %d starts\n", threads, steal, starts);
  CHECK(starts == (int)threads);
  CHECK(stops == 0);
  pthread_mutex_unlock(&mu);
  OK(proxy_server_shutdown(srv, 1000));
  /* Every started thread has stopped once shutdown returned. */
  pthread_mutex_lock(&mu);
  CHECK(stops == starts);
  pthread_mutex_unlock(&mu);
  OK(proxy_server_free(srv));
  CHECK(unhooked_callbacks == 0);
  CHECK(stop_without_start == 0);
  CHECK(double_start == 0);
}

int main(int argc, char **argv) {
  proxy_service *svc = NULL;
  CHECK(argc > 1);
  snprintf(origin, sizeof origin, "%s", argv[1]);
  CHECK(pthread_key_create(&hooked, NULL) == 0);
  CHECK((proxy_features() & PROXY_FEATURE_THREAD_HOOKS) != 0);

  /* Arguments: NULL service refused; NULL hooks accepted (and clear them). */
  CHECK_RC(proxy_service_set_thread_hooks(NULL, on_start, on_stop, NULL), PROXY_NULL_PARAMETER);
  OK(proxy_service_new("args", &svc));
  OK(proxy_service_set_thread_hooks(svc, on_start, NULL, NULL));
  OK(proxy_service_set_thread_hooks(svc, NULL, NULL, NULL));
  proxy_service_free(svc);

  run_case(3, 0); /* three isolated current-thread runtimes */
  run_case(1, 1); /* one worker: a current-thread runtime */
  run_case(3, 1); /* one work-stealing runtime with three workers */
  printf("thread hooks ok\n");
  return 0;
}
