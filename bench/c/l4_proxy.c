/* libproxy as a TCP (L4) proxy for bench/l4.sh: `l4_proxy LISTEN UPSTREAM` relays every
 * connection on LISTEN (host:port) to UPSTREAM, one worker thread, until SIGTERM / SIGINT.
 * L4_SPLICE=1 relays with splice(2); L4_BUFFER=N sets the bytes in flight per direction. */
#include <proxy.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *upstream;

static proxy_action upstream_peer(void *user, proxy_l4_session *s) {
  proxy_peer p;
  (void)user;
  memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.address = proxy_str_from_cstr(upstream);
  return proxy_l4_session_set_peer(s, &p) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

int main(int argc, char **argv) {
  proxy_server *srv = NULL;
  proxy_service *svc = NULL;
  proxy_l4_callbacks cbs;
  uint16_t port = 0;
  if (argc != 3) {
    fprintf(stderr, "usage: l4_proxy LISTEN UPSTREAM\n");
    return 2;
  }
  upstream = argv[2];
  memset(&cbs, 0, sizeof cbs);
  cbs.struct_size = sizeof cbs;
  cbs.upstream_peer = upstream_peer;
  if (proxy_server_new(&srv) || proxy_service_new("l4", &svc) || proxy_service_add_tcp(svc, argv[1], &port) ||
      proxy_service_set_l4_callbacks(svc, &cbs) ||
      proxy_service_set_l4_option(svc, PROXY_L4_SPLICE, getenv("L4_SPLICE") ? (uint64_t)atoi(getenv("L4_SPLICE")) : 0) ||
      (getenv("L4_BUFFER") && proxy_service_set_l4_option(svc, PROXY_L4_BUFFER_SIZE, (uint64_t)atoll(getenv("L4_BUFFER")))) ||
      proxy_server_add_service(srv, svc)) {
    fprintf(stderr, "l4_proxy: %s\n", proxy_result_message(proxy_last_error_code()));
    return 1;
  }
  printf("l4 proxying on port %u\n", (unsigned)port);
  fflush(stdout);
  proxy_server_run(srv, PROXY_RUN_SIGNALS);
  proxy_server_free(srv);
  return 0;
}
