/* A TCP (L4) proxy: every connection on LISTEN is relayed to UPSTREAM byte for byte, and its
 * logging hook prints the client (the address a PROXY header carried, when TRUSTED sends one),
 * the bytes each way and how it ended:
 *   ./tcp_proxy LISTEN UPSTREAM [TRUSTED]     e.g. TRUSTED = 127.0.0.1/32 (PROXY v1/v2 required)
 * Mirrors examples/python/tcp_proxy.py and examples/go/tcp_proxy. */
#include <proxy.h>
#include <stdio.h>
#include <string.h>

/* upstream_peer: every connection goes to the upstream given on the command line. */
static proxy_action pick_upstream(void *user, proxy_l4_session *s) {
  proxy_peer peer;
  memset(&peer, 0, sizeof peer);
  peer.struct_size = sizeof peer;
  peer.address = proxy_str_from_cstr((const char *)user);
  return proxy_l4_session_set_peer(s, &peer) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

/* How a connection ended, by its PROXY_L4_* code. */
static const char *const ends[] = {"open", "closed", "no peer", "connect failed", "error", "idle timeout", "max duration", "shutdown"};

/* logging: once the connection ended. */
static proxy_action log_connection(void *user, proxy_l4_session *s) {
  proxy_str client;
  proxy_l4_summary sum;
  (void)user;
  memset(&sum, 0, sizeof sum);
  sum.struct_size = sizeof sum;
  if (proxy_l4_session_client_addr(s, &client) != PROXY_OK || proxy_l4_session_summary(s, &sum) != PROXY_OK)
    return PROXY_CONTINUE;
  printf("%.*s up=%llu down=%llu end=%s\n", (int)client.len, (const char *)client.ptr,
         (unsigned long long)sum.bytes_up, (unsigned long long)sum.bytes_down,
         sum.end < sizeof ends / sizeof ends[0] ? ends[sum.end] : "?");
  fflush(stdout);
  return PROXY_CONTINUE;
}

static int fail(const char *what, proxy_result r) {
  fprintf(stderr, "%s failed: %s (%u)\n", what, proxy_result_message(r), (unsigned)r);
  return 1;
}

int main(int argc, char **argv) {
  proxy_server *srv = NULL;
  proxy_service *svc = NULL;
  proxy_l4_callbacks c;
  uint16_t port = 0;
  proxy_result r;
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: %s LISTEN UPSTREAM [TRUSTED]\n", argv[0]);
    return 2;
  }
  memset(&c, 0, sizeof c);
  c.struct_size = sizeof c;
  c.user = argv[2];
  c.upstream_peer = pick_upstream;
  c.logging = log_connection;
  if ((r = proxy_server_new(&srv)) != PROXY_OK) return fail("proxy_server_new", r);
  if ((r = proxy_service_new("tcp", &svc)) != PROXY_OK || (r = proxy_service_add_tcp(svc, argv[1], &port)) != PROXY_OK ||
      (r = proxy_service_set_l4_callbacks(svc, &c)) != PROXY_OK)
    return fail("the service", r);
  if (argc == 4 && (r = proxy_service_set_proxy_protocol(svc, PROXY_PP_REQUIRED, argv[3], 0)) != PROXY_OK)
    return fail("proxy_service_set_proxy_protocol", r);
  if ((r = proxy_server_add_service(srv, svc)) != PROXY_OK) return fail("proxy_server_add_service", r);
  printf("relaying port %u to %s\n", (unsigned)port, argv[2]);
  fflush(stdout);
  if ((r = proxy_server_run(srv, PROXY_RUN_SIGNALS)) != PROXY_OK) return fail("proxy_server_run", r);
  return proxy_server_free(srv) == PROXY_OK ? 0 : 1;
}
