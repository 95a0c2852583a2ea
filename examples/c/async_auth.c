/* Async auth: request_filter hands the decision to a worker pthread and returns PROXY_PENDING; the
 * thread "checks" the token (sleeps 20 ms), answers 403 or lets the request through, and calls
 * proxy_session_resume. No libproxy worker is blocked meanwhile.
 * Usage: async_auth LISTEN UPSTREAM */
#define _POSIX_C_SOURCE 200809L
#include <proxy.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static proxy_server *g_srv;
static const char *g_upstream;

struct check {
  proxy_session *s; /* usable on this thread until we resume */
  uint64_t id;
};

static void *decide(void *arg) {
  struct check *c = (struct check *)arg;
  struct timespec ts = {0, 20 * 1000000L};
  proxy_str tok;
  int ok;
  nanosleep(&ts, NULL); /* an auth service round trip */
  ok = proxy_session_header_get(c->s, PROXY_HEADERS_REQUEST, proxy_str_from_cstr("x-token"), 0, &tok,
                                NULL) == PROXY_OK &&
       tok.len == 6 && memcmp(tok.ptr, "secret", 6) == 0;
  if (ok) {
    proxy_session_resume(g_srv, c->id, PROXY_CONTINUE);
  } else {
    static const char body[] = "forbidden\n";
    proxy_session_respond(c->s, 403, NULL, 0, (const uint8_t *)body, sizeof body - 1);
    proxy_session_resume(g_srv, c->id, PROXY_RESPONDED);
  }
  free(c);
  return NULL;
}

static proxy_action request_filter(void *user, proxy_session *s) {
  pthread_t t;
  struct check *c = (struct check *)malloc(sizeof *c);
  (void)user;
  if (!c) return PROXY_ERROR;
  c->s = s;
  if (proxy_session_id(s, &c->id) != PROXY_OK || pthread_create(&t, NULL, decide, c) != 0) {
    free(c);
    return PROXY_ERROR;
  }
  pthread_detach(t);
  return PROXY_PENDING;
}

static proxy_action peer(void *user, proxy_session *s) {
  proxy_peer p;
  (void)user;
  memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.address = proxy_str_from_cstr(g_upstream);
  return proxy_session_set_peer(s, &p) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

int main(int argc, char **argv) {
  proxy_service *svc = NULL;
  proxy_http_callbacks cbs;
  if (argc < 3) {
    fprintf(stderr, "usage: %s LISTEN UPSTREAM\n", argv[0]);
    return 2;
  }
  g_upstream = argv[2];
  memset(&cbs, 0, sizeof cbs);
  cbs.struct_size = sizeof cbs;
  cbs.request_filter = request_filter;
  cbs.upstream_peer = peer;
  if (proxy_server_new(&g_srv) || proxy_service_new("async-auth", &svc) ||
      proxy_service_add_tcp(svc, argv[1], NULL) ||
      proxy_service_set_timeout(svc, PROXY_TIMEOUT_PENDING, 2000) ||
      proxy_service_set_callbacks(svc, &cbs) || proxy_server_add_service(g_srv, svc)) {
    fprintf(stderr, "setup failed\n");
    return 1;
  }
  proxy_server_run(g_srv, PROXY_RUN_SIGNALS);
  return proxy_server_free(g_srv) == PROXY_OK ? 0 : 1;
}
