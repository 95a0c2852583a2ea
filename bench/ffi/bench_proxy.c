/* The C ABI's overhead: a one-worker proxy to argv[2], listening on argv[1], with
 *   argv[3] = "all":  a C callback on every phase (trivial ones returning PROXY_CONTINUE;
 *                     upstream_peer sets the peer), or
 *   argv[3] = "peer": only upstream_peer.
 * Built and run by bench/ffi/run.sh. Stops on SIGINT / SIGTERM. */
#include <proxy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char upstream[256];

static proxy_action pass(void *user, proxy_session *s) {
  (void)user;
  (void)s;
  return PROXY_CONTINUE;
}

static proxy_action pick(void *user, proxy_session *s) {
  proxy_peer p;
  (void)user;
  memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.address = proxy_str_from_cstr(upstream);
  return proxy_session_set_peer(s, &p) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

int main(int argc, char **argv) {
  proxy_server *srv = NULL;
  proxy_service *svc = NULL;
  proxy_http_callbacks c;
  int all;
  if (argc != 4 || (strcmp(argv[3], "all") != 0 && strcmp(argv[3], "peer") != 0)) {
    fprintf(stderr, "usage: %s listen upstream all|peer\n", argv[0]);
    return 2;
  }
  all = strcmp(argv[3], "all") == 0;
  snprintf(upstream, sizeof upstream, "%s", argv[2]);
  memset(&c, 0, sizeof c);
  c.struct_size = sizeof c;
  c.upstream_peer = pick;
  if (all) {
    c.early_request_filter = pass;
    c.request_filter = pass;
    c.connected_to_upstream = pass;
    c.upstream_request_filter = pass;
    c.request_body_filter = pass;
    c.upstream_response_filter = pass;
    c.response_filter = pass;
    c.upstream_response_body_filter = pass;
    c.response_body_filter = pass;
    c.logging = pass;
    c.fail_to_connect = pass;
    c.error_while_proxy = pass;
    c.fail_to_proxy = pass;
    c.request_end = pass;
  }
  if (proxy_server_new(&srv) != PROXY_OK || proxy_service_new("bench", &svc) != PROXY_OK ||
      proxy_service_add_tcp(svc, argv[1], NULL) != PROXY_OK ||
      proxy_service_set_threads(svc, 1) != PROXY_OK || proxy_service_set_callbacks(svc, &c) != PROXY_OK ||
      proxy_server_add_service(srv, svc) != PROXY_OK) {
    fprintf(stderr, "setup failed\n");
    return 1;
  }
  return proxy_server_run(srv, PROXY_RUN_SIGNALS) == PROXY_OK && proxy_server_free(srv) == PROXY_OK ? 0 : 1;
}
