/* Round robin over several upstreams with retry on connect failure: upstream_peer picks the next
 * address on every call (a retry calls it again), fail_to_connect allows the retry.
 * Usage: round_robin LISTEN UPSTREAM1 [UPSTREAM2 ...] */
#include <proxy.h>
#include <stdio.h>
#include <string.h>

struct pool {
  char **addrs;
  unsigned n;
  unsigned next; /* racy increments only skew the rotation; callbacks run concurrently */
};

static proxy_action peer(void *user, proxy_session *s) {
  struct pool *p = (struct pool *)user;
  proxy_peer pr;
  unsigned i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED) % p->n;
  memset(&pr, 0, sizeof pr);
  pr.struct_size = sizeof pr;
  pr.address = proxy_str_from_cstr(p->addrs[i]);
  pr.connect_timeout_ms = 1000;
  return proxy_session_set_peer(s, &pr) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

static proxy_action fail_to_connect(void *user, proxy_session *s) {
  proxy_str e;
  (void)user;
  if (proxy_session_error(s, &e) == PROXY_OK) fprintf(stderr, "connect failed: %.*s; retrying\n", (int)e.len, e.ptr);
  proxy_session_set_retry(s, 1);
  return PROXY_CONTINUE;
}

int main(int argc, char **argv) {
  static struct pool pool;
  proxy_server *srv = NULL;
  proxy_service *svc = NULL;
  proxy_http_callbacks cbs;
  if (argc < 3) {
    fprintf(stderr, "usage: %s LISTEN UPSTREAM...\n", argv[0]);
    return 2;
  }
  pool.addrs = argv + 2;
  pool.n = (unsigned)(argc - 2);
  memset(&cbs, 0, sizeof cbs);
  cbs.struct_size = sizeof cbs;
  cbs.user = &pool;
  cbs.upstream_peer = peer;
  cbs.fail_to_connect = fail_to_connect;
  if (proxy_server_new(&srv) || proxy_service_new("round-robin", &svc) ||
      proxy_service_add_tcp(svc, argv[1], NULL) ||
      proxy_service_set_limit(svc, PROXY_LIMIT_MAX_RETRIES, pool.n) ||
      proxy_service_set_callbacks(svc, &cbs) || proxy_server_add_service(srv, svc)) {
    fprintf(stderr, "setup failed\n");
    return 1;
  }
  proxy_server_run(srv, PROXY_RUN_SIGNALS);
  return proxy_server_free(srv) == PROXY_OK ? 0 : 1;
}
