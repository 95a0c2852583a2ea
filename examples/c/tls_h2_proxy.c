/* TLS on both sides, HTTP/2 upstream: listen with TLS on argv[4] (default 127.0.0.1:8443;
 * certificate argv[1], key argv[2]; clients get h2 or http/1.1 by ALPN) and forward every request
 * over TLS and HTTP/2 to argv[5], verified against the CA file argv[3] for the name "localhost".
 * Without argv[5] it also starts an embedded demo origin (a second TLS service with the same
 * certificate) that says which HTTP version it was reached with:
 *
 *   ./tls_h2_proxy cert.pem key.pem ca.pem &  curl --cacert ca.pem https://localhost:8443/hi
 *
 * Stop with Ctrl-C (fast) or SIGTERM (graceful). Same program: examples/python/tls_h2_proxy.py,
 * examples/go/tls_h2_proxy. */
#include <proxy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(call)                                                                              \
  do {                                                                                           \
    proxy_result r_ = (call);                                                                    \
    if (r_ != PROXY_OK) {                                                                        \
      fprintf(stderr, "%s failed: %s (%u)\n", #call, proxy_result_message(r_), (unsigned)r_);    \
      exit(1);                                                                                   \
    }                                                                                            \
  } while (0)

struct config {
  char upstream[256];
  const char *ca_file;
};

/* upstream_peer: TLS verified against the CA file, SNI "localhost", HTTP/2 only (ALPN h2). */
static proxy_action pick_upstream(void *user, proxy_session *s) {
  const struct config *cfg = (const struct config *)user;
  proxy_peer peer;
  memset(&peer, 0, sizeof peer);
  peer.struct_size = sizeof peer;
  peer.address = proxy_str_from_cstr(cfg->upstream);
  peer.flags = PROXY_PEER_TLS;
  peer.sni = proxy_str_from_cstr("localhost");
  peer.ca_file = proxy_str_from_cstr(cfg->ca_file);
  peer.alpn = PROXY_ALPN_H2;
  return proxy_session_set_peer(s, &peer) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

/* The demo origin's request_filter: answer here, naming the HTTP version the request came with. */
static proxy_action demo_origin(void *user, proxy_session *s) {
  char body[512];
  proxy_str path;
  uint32_t version = 0;
  proxy_header h;
  int n;
  (void)user;
  if (proxy_session_path(s, &path) != PROXY_OK) return PROXY_ERROR;
  if (proxy_session_version(s, &version) != PROXY_OK) return PROXY_ERROR;
  n = snprintf(body, sizeof body, "hello over %s from the demo origin, you asked for %.*s\n",
               version == PROXY_HTTP_20 ? "HTTP/2" : "HTTP/1.1", (int)path.len, path.ptr);
  if (n < 0 || (size_t)n >= sizeof body) n = (int)sizeof body - 1;
  h.name = proxy_str_from_cstr("content-type");
  h.value = proxy_str_from_cstr("text/plain");
  if (proxy_session_respond(s, 200, &h, 1, (const uint8_t *)body, (size_t)n) != PROXY_OK)
    return PROXY_ERROR;
  return PROXY_RESPONDED;
}

int main(int argc, char **argv) {
  const char *listen = argc > 4 ? argv[4] : "127.0.0.1:8443";
  static struct config cfg;
  proxy_server *server = NULL;
  proxy_service *svc = NULL;
  proxy_tls_settings *tls = NULL;
  proxy_http_callbacks cbs;
  uint16_t port = 0;

  if (argc < 4) {
    fprintf(stderr, "usage: %s CERT KEY CA [LISTEN] [UPSTREAM]\n", argv[0]);
    return 2;
  }
  if ((proxy_abi_version() >> 16) != PROXY_ABI_VERSION_MAJOR) {
    fprintf(stderr, "libproxy ABI mismatch\n");
    return 1;
  }
  cfg.ca_file = argv[3];
  CHECK(proxy_server_new(&server));
  /* One certificate for both TLS endpoints; ALPN offers h2, then http/1.1. */
  CHECK(proxy_tls_settings_new(&tls));
  CHECK(proxy_tls_settings_set_cert_files(tls, argv[1], argv[2]));

  if (argc > 5) {
    snprintf(cfg.upstream, sizeof cfg.upstream, "%s", argv[5]);
  } else {
    proxy_service *origin = NULL;
    memset(&cbs, 0, sizeof cbs);
    cbs.struct_size = sizeof cbs;
    cbs.request_filter = demo_origin;
    CHECK(proxy_service_new("demo-origin", &origin));
    CHECK(proxy_service_add_tls(origin, "127.0.0.1:0", tls, &port));
    CHECK(proxy_service_set_callbacks(origin, &cbs));
    CHECK(proxy_server_add_service(server, origin));
    snprintf(cfg.upstream, sizeof cfg.upstream, "127.0.0.1:%u", (unsigned)port);
    printf("demo origin on %s\n", cfg.upstream);
  }

  memset(&cbs, 0, sizeof cbs);
  cbs.struct_size = sizeof cbs;
  cbs.user = &cfg;
  cbs.upstream_peer = pick_upstream;
  CHECK(proxy_service_new("proxy", &svc));
  CHECK(proxy_service_add_tls(svc, listen, tls, &port));
  CHECK(proxy_tls_settings_free(tls)); /* the endpoints keep copies */
  CHECK(proxy_service_set_callbacks(svc, &cbs));
  CHECK(proxy_server_add_service(server, svc));

  printf("%s proxying on port %u to %s over TLS and HTTP/2\n", proxy_version(), (unsigned)port,
         cfg.upstream);
  fflush(stdout);
  CHECK(proxy_server_run(server, PROXY_RUN_SIGNALS));
  CHECK(proxy_server_free(server));
  return 0;
}
