/* Header rewrite + auth: requests without `Authorization: Bearer letmein` get 401 from
 * request_filter; accepted ones lose the Authorization header, gain X-User upstream, and the
 * response gets X-Proxy. Usage: header_rewrite_auth LISTEN UPSTREAM */
#include <proxy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *g_upstream;

static proxy_action auth(void *user, proxy_session *s) {
  proxy_str v;
  proxy_header h[2];
  static const char body[] = "missing or bad token\n";
  (void)user;
  if (proxy_session_header_get(s, PROXY_HEADERS_REQUEST, proxy_str_from_cstr("authorization"), 0, &v,
                               NULL) == PROXY_OK &&
      v.len == strlen("Bearer letmein") && memcmp(v.ptr, "Bearer letmein", v.len) == 0) {
    proxy_session_header_remove(s, PROXY_HEADERS_REQUEST, proxy_str_from_cstr("authorization"));
    return PROXY_CONTINUE;
  }
  h[0].name = proxy_str_from_cstr("www-authenticate");
  h[0].value = proxy_str_from_cstr("Bearer");
  h[1].name = proxy_str_from_cstr("content-type");
  h[1].value = proxy_str_from_cstr("text/plain");
  if (proxy_session_respond(s, 401, h, 2, (const uint8_t *)body, sizeof body - 1) != PROXY_OK)
    return PROXY_ERROR;
  return PROXY_RESPONDED;
}

static proxy_action peer(void *user, proxy_session *s) {
  proxy_peer p;
  (void)user;
  memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.address = proxy_str_from_cstr(g_upstream);
  return proxy_session_set_peer(s, &p) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

static proxy_action upstream_request(void *user, proxy_session *s) {
  (void)user;
  return proxy_session_header_set(s, PROXY_HEADERS_UPSTREAM_REQUEST, proxy_str_from_cstr("x-user"),
                                  proxy_str_from_cstr("letmein-holder")) == PROXY_OK
             ? PROXY_CONTINUE
             : PROXY_ERROR;
}

static proxy_action response(void *user, proxy_session *s) {
  (void)user;
  proxy_session_header_set(s, PROXY_HEADERS_RESPONSE, proxy_str_from_cstr("x-proxy"),
                           proxy_str_from_cstr(proxy_version()));
  return PROXY_CONTINUE;
}

int main(int argc, char **argv) {
  proxy_server *srv = NULL;
  proxy_service *svc = NULL;
  proxy_http_callbacks cbs;
  if (argc < 3) {
    fprintf(stderr, "usage: %s LISTEN UPSTREAM\n", argv[0]);
    return 2;
  }
  g_upstream = argv[2];
  memset(&cbs, 0, sizeof cbs);
  cbs.struct_size = sizeof cbs;
  cbs.request_filter = auth;
  cbs.upstream_peer = peer;
  cbs.upstream_request_filter = upstream_request;
  cbs.response_filter = response;
  if (proxy_server_new(&srv) || proxy_service_new("auth-proxy", &svc) ||
      proxy_service_add_tcp(svc, argv[1], NULL) || proxy_service_set_callbacks(svc, &cbs) ||
      proxy_server_add_service(srv, svc)) {
    fprintf(stderr, "setup failed\n");
    return 1;
  }
  proxy_server_run(srv, PROXY_RUN_SIGNALS);
  return proxy_server_free(srv) == PROXY_OK ? 0 : 1;
}
