/* Upstream groups from C: ids that go stale answer GONE, NULL and bad arguments are refused with
 * nothing changed, backends replaced from four threads while requests run (none fails: retries
 * skip the dead backends), figures, the health callback, an HTTP health check, a host background
 * service with its shutdown signal, DNS discovery of localhost, and proxy_session_pick /
 * proxy_session_backend in the phases.
 * argv[1] is the test origin. A failed CHECK in a callback exits the program from its thread. */
#include "common.h"

static char origin[64];
static uint64_t web, empty, dns;
static const char *dead = "127.0.0.1:1";

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int dead_down, bg_started, bg_stopped, stop_updaters;

static void on_health(void *user, proxy_str backend, uint32_t event) {
  (void)user;
  pthread_mutex_lock(&mu);
  if (event == PROXY_HEALTH_DOWN && str_eq(backend, dead)) dead_down = 1;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

static void background(void *user, const proxy_shutdown *sd) {
  CHECK(user == &bg_started);
  pthread_mutex_lock(&mu);
  bg_started = 1;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
  while (!proxy_shutdown_wait(sd, 1000)) {
  }
  CHECK(proxy_shutdown_wait(sd, 0) == 1);
  pthread_mutex_lock(&mu);
  bg_stopped = 1;
  pthread_mutex_unlock(&mu);
}

static void wait_flag(int *flag) {
  pthread_mutex_lock(&mu);
  while (!*flag) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
}

static proxy_action upstream_peer(void *user, proxy_session *s) {
  proxy_str path;
  (void)user;
  CHECK(proxy_session_path(s, &path) == PROXY_OK);
  if (str_eq(path, "/empty")) {
    CHECK_RC(proxy_session_pick(s, empty, proxy_str_from_cstr("k")), PROXY_UNAVAILABLE);
    return PROXY_CONTINUE; /* the pick's error: 502 */
  }
  CHECK_RC(proxy_session_pick(NULL, web, proxy_str_from_cstr("k")), PROXY_NULL_PARAMETER);
  CHECK_RC(proxy_session_pick(s, 999999999, proxy_str_from_cstr("k")), PROXY_GONE);
  return proxy_session_pick(s, web, proxy_str_from_cstr("k")) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

static proxy_action logging(void *user, proxy_session *s) {
  proxy_str path, name;
  (void)user;
  CHECK(proxy_session_path(s, &path) == PROXY_OK);
  if (!str_eq(path, "/empty")) {
    OK(proxy_session_backend(s, &name));
    CHECK(str_eq(name, origin));
  } else {
    CHECK_RC(proxy_session_backend(s, &name), PROXY_NOT_FOUND);
  }
  CHECK_RC(proxy_session_pick(s, web, proxy_str_from_cstr("k")), PROXY_WRONG_PHASE);
  return PROXY_CONTINUE;
}

static proxy_peer peer_of(const char *addr) {
  proxy_peer p;
  memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.address = proxy_str_from_cstr(addr);
  return p;
}

/* Replaces the list over and over: the origin with and without dead backends, plus abuse of
 * freed ids, while requests pick from it. */
static void *updater(void *arg) {
  const char *with_dead[] = {origin, dead, "127.0.0.1:2"};
  const char *alone[] = {origin};
  uint32_t w[] = {2, 1, 1};
  uint64_t g = 0;
  int i = 0;
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&mu);
    if (stop_updaters) {
      pthread_mutex_unlock(&mu);
      return NULL;
    }
    pthread_mutex_unlock(&mu);
    OK(proxy_group_set_backends(web, i % 2 ? with_dead : alone, w, i % 2 ? 3 : 1));
    OK(proxy_group_new("scratch", PROXY_GROUP_MAGLEV, &g));
    OK(proxy_group_set_backends(g, with_dead, NULL, 3));
    OK(proxy_group_free(g));
    CHECK_RC(proxy_group_set_backends(g, alone, NULL, 1), PROXY_GONE);
    CHECK_RC(proxy_group_free(g), PROXY_GONE);
    i++;
  }
}

int main(int argc, char **argv) {
  proxy_http_callbacks cbs = callbacks_init(NULL);
  proxy_server *srv = NULL;
  proxy_service *svc = NULL;
  proxy_health_check hc;
  proxy_peer p;
  pthread_t threads[4];
  uint16_t port = 0;
  uint64_t stale = 0, v = 0;
  size_t n = 0, len = 0;
  char name[64], small[4];
  static char buf[65536];
  const char *two[] = {"127.0.0.1:10", "127.0.0.1:10"};
  const char *bad[] = {"nohost"};
  int i;
  CHECK(argc > 1);
  snprintf(origin, sizeof origin, "%s", argv[1]);
  CHECK((proxy_features() & PROXY_FEATURE_UPSTREAM_GROUPS) != 0);

  /* NULL and bad arguments: refused, nothing made or changed. */
  CHECK_RC(proxy_group_new("g", PROXY_GROUP_ROUND_ROBIN, NULL), PROXY_NULL_PARAMETER);
  CHECK_RC(proxy_group_new(NULL, PROXY_GROUP_ROUND_ROBIN, &web), PROXY_NULL_PARAMETER);
  CHECK_RC(proxy_group_new("g", 99, &web), PROXY_INVALID_PARAMETER);
  OK(proxy_group_new("web", PROXY_GROUP_KETAMA, &web));
  OK(proxy_group_new("empty", PROXY_GROUP_ROUND_ROBIN, &empty));
  p = peer_of(origin);
  CHECK_RC(proxy_group_add_backend(web, NULL, NULL, 1), PROXY_NULL_PARAMETER);
  CHECK_RC(proxy_group_add_backend(web, NULL, &p, 0), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_group_add_backend(web, NULL, &p, 257), PROXY_INVALID_PARAMETER);
  OK(proxy_group_add_backend(web, NULL, &p, 3));
  CHECK_RC(proxy_group_add_backend(web, NULL, &p, 1), PROXY_INVALID_PARAMETER);
  p = peer_of(dead);
  OK(proxy_group_add_backend(web, NULL, &p, 1));
  CHECK_RC(proxy_group_set_backends(web, two, NULL, 2), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_group_set_backends(web, bad, NULL, 1), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_group_set_backends(web, NULL, NULL, 1), PROXY_NULL_PARAMETER);
  CHECK_RC(proxy_group_remove_backend(web, "127.0.0.1:3"), PROXY_NOT_FOUND);
  CHECK_RC(proxy_group_remove_backend(web, NULL), PROXY_NULL_PARAMETER);
  OK(proxy_group_backend_count(web, &n));
  CHECK(n == 2);
  CHECK_RC(proxy_group_set(web, 99, 1), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_group_set(web, PROXY_GROUP_EJECT_MAX_PERCENT, 101), PROXY_INVALID_PARAMETER);
  OK(proxy_group_set(web, PROXY_GROUP_EJECT_FAILURES, 1));
  OK(proxy_group_set(web, PROXY_GROUP_EJECT_MAX_PERCENT, 50));
  OK(proxy_group_set(web, PROXY_GROUP_MAX_CONNECTIONS, 64));
  OK(proxy_group_set_health_callback(web, on_health, NULL));

  /* A stale id: every call answers GONE. */
  OK(proxy_group_new("stale", PROXY_GROUP_RANDOM, &stale));
  OK(proxy_group_free(stale));
  CHECK_RC(proxy_group_free(stale), PROXY_GONE);
  CHECK_RC(proxy_group_add_backend(stale, NULL, &p, 1), PROXY_GONE);
  CHECK_RC(proxy_group_remove_backend(stale, "x"), PROXY_GONE);
  CHECK_RC(proxy_group_set(stale, PROXY_GROUP_MAX_IN_FLIGHT, 1), PROXY_GONE);
  CHECK_RC(proxy_group_backend_count(stale, &n), PROXY_GONE);
  CHECK_RC(proxy_group_backend_figure(stale, 0, PROXY_BACKEND_REQUESTS, &v), PROXY_GONE);
  CHECK_RC(proxy_group_backend_name(stale, 0, name, sizeof name, &len), PROXY_GONE);
  CHECK_RC(proxy_group_set_health_callback(stale, on_health, NULL), PROXY_GONE);
  CHECK_RC(proxy_group_backend_figure(web, 0, PROXY_BACKEND_REQUESTS, NULL), PROXY_NULL_PARAMETER);
  CHECK_RC(proxy_group_backend_figure(web, 0, 99, &v), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_group_backend_figure(web, 9, PROXY_BACKEND_REQUESTS, &v), PROXY_NOT_FOUND);
  OK(proxy_group_backend_figure(web, 0, PROXY_BACKEND_CONNECTIONS, &v));
  CHECK(v <= 64);
  CHECK_RC(proxy_group_backend_name(web, 0, small, sizeof small, &len), PROXY_TOO_SMALL);
  CHECK(len == strlen(origin));
  OK(proxy_group_backend_name(web, 0, name, sizeof name, &len));
  CHECK(len == strlen(origin) && memcmp(name, origin, len) == 0);

  cbs.upstream_peer = upstream_peer;
  cbs.logging = logging;
  OK(proxy_server_new(&srv));
  OK(proxy_service_new("groups", &svc));
  OK(proxy_service_add_tcp(svc, "127.0.0.1:0", &port));
  OK(proxy_service_set_callbacks(svc, &cbs));
  OK(proxy_service_set_threads(svc, 2));
  OK(proxy_server_add_service(srv, svc));

  memset(&hc, 0, sizeof hc);
  hc.struct_size = sizeof hc;
  hc.probe = PROXY_PROBE_HTTP;
  hc.interval_ms = 50;
  hc.timeout_ms = 1000;
  hc.fall = 1;
  hc.path = proxy_str_from_cstr("/health");
  hc.body = proxy_str_from_cstr("GET /health");
  CHECK_RC(proxy_server_add_health_check(srv, stale, &hc), PROXY_GONE);
  CHECK_RC(proxy_server_add_health_check(srv, web, NULL), PROXY_NULL_PARAMETER);
  hc.probe = 7;
  CHECK_RC(proxy_server_add_health_check(srv, web, &hc), PROXY_INVALID_PARAMETER);
  hc.probe = PROXY_PROBE_HTTP;
  OK(proxy_server_add_health_check(srv, web, &hc));
  OK(proxy_group_new("dns", PROXY_GROUP_RANDOM, &dns));
  CHECK_RC(proxy_server_add_dns_discovery(srv, dns, "localhost", 70000, 1, 50), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_server_add_dns_discovery(srv, dns, NULL, 8080, 1, 50), PROXY_NULL_PARAMETER);
  CHECK_RC(proxy_server_add_dns_discovery(srv, stale, "localhost", 8080, 1, 50), PROXY_GONE);
  OK(proxy_server_add_dns_discovery(srv, dns, "localhost", 8080, 2, 50));
  CHECK_RC(proxy_server_add_background(srv, "bg", NULL, NULL), PROXY_NULL_PARAMETER);
  OK(proxy_server_add_background(srv, "bg", background, &bg_started));
  CHECK(proxy_shutdown_wait(NULL, 0) != 0);
  OK(proxy_server_start(srv));
  CHECK_RC(proxy_server_add_background(srv, "late", background, &bg_started), PROXY_WRONG_STATE);
  CHECK_RC(proxy_server_add_health_check(srv, web, &hc), PROXY_WRONG_STATE);
  wait_flag(&bg_started);
  /* The dead backend fails its probe: down. */
  wait_flag(&dead_down);
  /* DNS discovery's first round, on the service's own thread, fills the group with localhost. */
  for (i = 0, n = 0; i < 1000 && n == 0; i++) {
    OK(proxy_group_backend_count(dns, &n));
    if (n == 0) sleep_ms(5);
  }
  CHECK(n >= 1);
  OK(proxy_group_backend_figure(dns, 0, PROXY_BACKEND_WEIGHT, &v));
  CHECK(v == 2);
  OK(proxy_group_backend_name(dns, 0, name, sizeof name, &len));
  CHECK((len == 14 && memcmp(name, "127.0.0.1:8080", 14) == 0) || (len == 10 && memcmp(name, "[::1]:8080", 10) == 0));

  /* Four threads replace the list while requests run; every request is answered by the origin. */
  for (i = 0; i < 4; i++) CHECK(pthread_create(&threads[i], NULL, updater, NULL) == 0);
  for (i = 0; i < 200; i++) {
    int status = http_raw(port, "GET /x?k=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", buf, sizeof buf);
    CHECK(status == 200);
  }
  pthread_mutex_lock(&mu);
  stop_updaters = 1;
  pthread_mutex_unlock(&mu);
  for (i = 0; i < 4; i++) CHECK(pthread_join(threads[i], NULL) == 0);
  CHECK(http_raw(port, "GET /empty HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", buf, sizeof buf) == 502);

  OK(proxy_group_backend_name(web, 0, name, sizeof name, &len));
  CHECK(len == strlen(origin) && memcmp(name, origin, len) == 0);
  OK(proxy_group_backend_figure(web, 0, PROXY_BACKEND_REQUESTS, &v));
  CHECK(v > 0);
  OK(proxy_group_backend_figure(web, 0, PROXY_BACKEND_HEALTHY, &v));
  CHECK(v == 1);

  /* Free the group while the server still checks it: the check keeps it until the server stops. */
  OK(proxy_group_free(web));
  CHECK_RC(proxy_group_backend_count(web, &n), PROXY_GONE);
  OK(proxy_server_shutdown(srv, 2000));
  pthread_mutex_lock(&mu);
  CHECK(bg_stopped == 1);
  pthread_mutex_unlock(&mu);
  OK(proxy_server_free(srv));
  OK(proxy_group_free(empty));
  OK(proxy_group_free(dns));
  printf("groups ok\n");
  return 0;
}
