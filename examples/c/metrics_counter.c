/* A proxy whose request_filter counts requests by method in a labelled counter of its own,
 * exposed with the built-in figures on a metrics endpoint for Prometheus:
 *   ./metrics_counter LISTEN UPSTREAM METRICS_LISTEN
 *   curl http://METRICS_LISTEN/metrics | grep app_requests_by_method_total
 * Mirrors examples/python/metrics_counter.py and examples/go/metrics_counter. */
#include <proxy.h>
#include <stdio.h>
#include <string.h>

struct config {
  const char *upstream;
  proxy_metric *requests;
};

/* request_filter: count the request under its method. proxy_metric_series finds the series (the
 * same one for the same method); the add itself takes no lock. */
static proxy_action count(void *user, proxy_session *s) {
  const struct config *cfg = (const struct config *)user;
  proxy_str method;
  proxy_series *series;
  if (proxy_session_method(s, &method) != PROXY_OK) return PROXY_ERROR;
  if (proxy_metric_series(cfg->requests, &method, 1, &series) != PROXY_OK) return PROXY_ERROR;
  return proxy_series_add(series, 1) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

/* upstream_peer: every request goes to the configured upstream. */
static proxy_action pick_upstream(void *user, proxy_session *s) {
  const struct config *cfg = (const struct config *)user;
  proxy_peer peer;
  memset(&peer, 0, sizeof peer);
  peer.struct_size = sizeof peer;
  peer.address = proxy_str_from_cstr(cfg->upstream);
  return proxy_session_set_peer(s, &peer) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

static int fail(const char *what, proxy_result r) {
  fprintf(stderr, "%s failed: %s (%u)\n", what, proxy_result_message(r), (unsigned)r);
  return 1;
}

int main(int argc, char **argv) {
  struct config cfg;
  proxy_server *srv = NULL;
  proxy_service *svc = NULL;
  proxy_http_callbacks c;
  proxy_str label = proxy_str_from_cstr("method");
  uint16_t port = 0;
  proxy_result r;
  if (argc != 4) {
    fprintf(stderr, "usage: %s LISTEN UPSTREAM METRICS_LISTEN\n", argv[0]);
    return 2;
  }
  cfg.upstream = argv[2];
  if ((r = proxy_server_new(&srv)) != PROXY_OK) return fail("proxy_server_new", r);
  if ((r = proxy_metric_new(srv, PROXY_METRIC_COUNTER, "app_requests_by_method", "Requests seen, by method.",
                            &label, 1, NULL, 0, &cfg.requests)) != PROXY_OK)
    return fail("proxy_metric_new", r);
  memset(&c, 0, sizeof c);
  c.struct_size = sizeof c;
  c.user = &cfg;
  c.request_filter = count;
  c.upstream_peer = pick_upstream;
  if ((r = proxy_service_new("counted", &svc)) != PROXY_OK ||
      (r = proxy_service_add_tcp(svc, argv[1], NULL)) != PROXY_OK ||
      (r = proxy_service_set_callbacks(svc, &c)) != PROXY_OK ||
      (r = proxy_service_set_observe(svc, PROXY_OBSERVE_METRICS | PROXY_OBSERVE_REQUEST_IDS)) != PROXY_OK ||
      (r = proxy_server_add_service(srv, svc)) != PROXY_OK)
    return fail("the service", r);
  if ((r = proxy_server_add_metrics(srv, argv[3], &port)) != PROXY_OK) return fail("proxy_server_add_metrics", r);
  printf("metrics on port %u\n", (unsigned)port);
  fflush(stdout);
  if ((r = proxy_server_run(srv, PROXY_RUN_SIGNALS)) != PROXY_OK) return fail("proxy_server_run", r);
  return proxy_server_free(srv) == PROXY_OK ? 0 : 1;
}
