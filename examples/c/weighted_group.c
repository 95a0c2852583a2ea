/* A weighted, health-checked upstream group: upstream_peer picks from the group (a retry gets a
 * backend not tried yet), passive health ejects a backend after 3 failures in a row, an HTTP
 * check (GET / every 2 s, fall 2, rise 2) takes it down and brings it back, and health changes
 * are printed.
 * Usage: weighted_group LISTEN UPSTREAM=WEIGHT [UPSTREAM=WEIGHT ...] */
#include <proxy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const events[] = {"", "up", "down", "ejected", "readmitted"};

static proxy_action peer(void *user, proxy_session *s) {
  uint64_t group = *(uint64_t *)user;
  proxy_str no_key = {NULL, 0};
  return proxy_session_pick(s, group, no_key) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

static void health(void *user, proxy_str backend, uint32_t event) {
  (void)user;
  fprintf(stderr, "backend %.*s: %s\n", (int)backend.len, backend.ptr, events[event <= 4 ? event : 0]);
}

int main(int argc, char **argv) {
  static uint64_t group;
  proxy_server *srv = NULL;
  proxy_service *svc = NULL;
  proxy_http_callbacks cbs;
  proxy_health_check check;
  int i;
  if (argc < 3) {
    fprintf(stderr, "usage: %s LISTEN UPSTREAM=WEIGHT...\n", argv[0]);
    return 2;
  }
  if (proxy_group_new("backends", PROXY_GROUP_ROUND_ROBIN, &group)) return 1;
  for (i = 2; i < argc; i++) {
    char *eq = strchr(argv[i], '=');
    proxy_peer pr;
    memset(&pr, 0, sizeof pr);
    pr.struct_size = sizeof pr;
    if (eq) *eq = 0;
    pr.address = proxy_str_from_cstr(argv[i]);
    pr.connect_timeout_ms = 1000;
    if (proxy_group_add_backend(group, NULL, &pr, eq ? (uint32_t)atoi(eq + 1) : 1)) {
      fprintf(stderr, "bad backend %s\n", argv[i]);
      return 1;
    }
  }
  proxy_group_set(group, PROXY_GROUP_EJECT_FAILURES, 3);
  proxy_group_set_health_callback(group, health, NULL);
  memset(&check, 0, sizeof check);
  check.struct_size = sizeof check;
  check.probe = PROXY_PROBE_HTTP;
  check.interval_ms = 2000;
  check.rise = 2;
  check.fall = 2;
  memset(&cbs, 0, sizeof cbs);
  cbs.struct_size = sizeof cbs;
  cbs.user = &group;
  cbs.upstream_peer = peer;
  if (proxy_server_new(&srv) || proxy_service_new("weighted-group", &svc) ||
      proxy_service_add_tcp(svc, argv[1], NULL) ||
      proxy_service_set_limit(svc, PROXY_LIMIT_MAX_RETRIES, (uint64_t)(argc - 2)) ||
      proxy_service_set_callbacks(svc, &cbs) || proxy_server_add_service(srv, svc) ||
      proxy_server_add_health_check(srv, group, &check)) {
    fprintf(stderr, "setup failed\n");
    return 1;
  }
  proxy_server_run(srv, PROXY_RUN_SIGNALS);
  if (proxy_server_free(srv) != PROXY_OK) return 1;
  return proxy_group_free(group) == PROXY_OK ? 0 : 1;
}
