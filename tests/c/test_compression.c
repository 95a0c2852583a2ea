/* Compression from C: service defaults with proxy_service_set_compression (out-of-range values
 * refused with nothing changed), per-request changes with proxy_session_set_compression in
 * request_filter, WRONG_PHASE once the response head went out. The origin's /gen/N answers N
 * bytes of text/plain. A failed CHECK in a callback exits the program from its worker thread. */
#include "common.h"

#include <strings.h>

static char origin[64];
static proxy_action request_filter(void *user, proxy_session *s) {
  proxy_str q;
  (void)user;
  CHECK(proxy_session_set_compression(NULL, PROXY_COMPRESSION_ENABLED, 1) == PROXY_NULL_PARAMETER);
  /* Per service only, or out of range: refused. */
  CHECK(proxy_session_set_compression(s, PROXY_COMPRESSION_MIN_LENGTH, 1) == PROXY_INVALID_PARAMETER);
  CHECK(proxy_session_set_compression(s, PROXY_COMPRESSION_ENABLED, 2) == PROXY_INVALID_PARAMETER);
  CHECK(proxy_session_set_compression(s, PROXY_COMPRESSION_LEVEL_GZIP, 10) == PROXY_INVALID_PARAMETER);
  CHECK(proxy_session_set_compression(s, PROXY_COMPRESSION_ALGORITHMS, 8) == PROXY_INVALID_PARAMETER);
  if (proxy_session_query(s, &q) == PROXY_OK && str_eq(q, "off")) {
    CHECK(proxy_session_set_compression(s, PROXY_COMPRESSION_ENABLED, 0) == PROXY_OK);
  }
  if (proxy_session_query(s, &q) == PROXY_OK && str_eq(q, "br")) {
    CHECK(proxy_session_set_compression(s, PROXY_COMPRESSION_ALGORITHMS, PROXY_ENCODING_BROTLI) == PROXY_OK);
    CHECK(proxy_session_set_compression(s, PROXY_COMPRESSION_LEVEL_BROTLI, 11) == PROXY_OK);
  }
  return PROXY_CONTINUE;
}

static proxy_action upstream_peer(void *user, proxy_session *s) {
  (void)user;
  return set_peer_str(s, origin) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

static proxy_action logging(void *user, proxy_session *s) {
  (void)user;
  CHECK(proxy_session_set_compression(s, PROXY_COMPRESSION_ENABLED, 1) == PROXY_WRONG_PHASE);
  return PROXY_CONTINUE;
}

static int get(uint16_t port, const char *path, char *buf, size_t cap) {
  char req[512];
  snprintf(req, sizeof req,
           "GET %s HTTP/1.1\r\nHost: test\r\nAccept-Encoding: gzip, br\r\nConnection: close\r\n\r\n",
           path);
  return http_raw(port, req, buf, cap);
}

/* Case-insensitive search for a header line in the response head. */
static int has_line(const char *resp, const char *line) {
  size_t n = strlen(line);
  const char *end = strstr(resp, "\r\n\r\n");
  const char *p;
  for (p = resp; end && p < end; p++) {
    if ((p == resp || p[-1] == '\n') && strncasecmp(p, line, n) == 0) return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  proxy_http_callbacks cbs = callbacks_init(NULL);
  proxy_server *srv = NULL;
  proxy_service *svc = NULL;
  uint16_t port = 0;
  static char buf[65536];
  const char *body;
  CHECK(argc > 1);
  snprintf(origin, sizeof origin, "%s", argv[1]);
  cbs.request_filter = request_filter;
  cbs.upstream_peer = upstream_peer;
  cbs.logging = logging;

  CHECK((proxy_features() & PROXY_FEATURE_COMPRESSION) != 0);
  OK(proxy_server_new(&srv));
  OK(proxy_service_new("compress", &svc));
  OK(proxy_service_add_tcp(svc, "127.0.0.1:0", &port));
  OK(proxy_service_set_callbacks(svc, &cbs));
  CHECK_RC(proxy_service_set_compression(NULL, PROXY_COMPRESSION_ENABLED, 1), PROXY_NULL_PARAMETER);
  CHECK_RC(proxy_service_set_compression(svc, 99, 1), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_service_set_compression(svc, PROXY_COMPRESSION_LEVEL_ZSTD, 23), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_service_set_compression(svc, PROXY_COMPRESSION_MAX_RATIO, 0), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_service_set_compression_types(svc, "text/plain, json"), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_service_set_compression_types(svc, NULL), PROXY_NULL_PARAMETER);
  OK(proxy_service_set_compression_types(svc, "text/*, application/json"));
  OK(proxy_service_set_compression(svc, PROXY_COMPRESSION_ENABLED, 1));
  OK(proxy_service_set_compression(svc, PROXY_COMPRESSION_ALGORITHMS, PROXY_ENCODING_GZIP));
  OK(proxy_service_set_compression(svc, PROXY_COMPRESSION_LEVEL_GZIP, 9));
  OK(proxy_service_set_compression(svc, PROXY_COMPRESSION_MIN_LENGTH, 1000));
  OK(proxy_service_set_compression(svc, PROXY_COMPRESSION_DECOMPRESS_UPSTREAM, 1));
  OK(proxy_service_set_compression(svc, PROXY_COMPRESSION_MAX_DECODED, 1u << 20));
  OK(proxy_server_add_service(srv, svc));
  OK(proxy_server_start(srv));

  /* The service's gzip, though the client also takes br. */
  CHECK(get(port, "/gen/4000", buf, sizeof buf) == 200);
  CHECK(has_line(buf, "content-encoding: gzip\r\n"));
  CHECK(has_line(buf, "transfer-encoding: chunked\r\n"));
  CHECK(has_line(buf, "vary: Accept-Encoding\r\n"));
  CHECK(!has_line(buf, "content-length:"));
  /* Below the service's minimum length. */
  CHECK(get(port, "/gen/999", buf, sizeof buf) == 200);
  CHECK(!has_line(buf, "content-encoding:"));
  CHECK(has_line(buf, "content-length: 999\r\n"));
  /* Turned off for one request: the origin's bytes. */
  CHECK(get(port, "/gen/4000?off", buf, sizeof buf) == 200);
  CHECK(!has_line(buf, "content-encoding:"));
  body = strstr(buf, "\r\n\r\n");
  CHECK(body != NULL && strlen(body + 4) == 4000);
  /* Another algorithm for one request. */
  CHECK(get(port, "/gen/4000?br", buf, sizeof buf) == 200);
  CHECK(has_line(buf, "content-encoding: br\r\n"));

  OK(proxy_server_shutdown(srv, 1000));
  OK(proxy_server_free(srv));
  printf("compression ok\n");
  return 0;
}
