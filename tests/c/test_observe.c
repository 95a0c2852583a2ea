/* Observability from C: a host-defined labelled counter and the built-in figures on the metrics
 * endpoint, the metric error codes, the request id read in a callback, a JSON access log written
 * to a file (one line per request, reopened after a rename), and error responses replaced by the
 * host: a 502 from a refused upstream and a 400 refused before any phase. */
#include "common.h"

#include <stdlib.h>

static proxy_metric *hits;
static char seen_id[64];
static char refused[32];

static proxy_action peer(void *user, proxy_session *s) {
  proxy_str path, id;
  proxy_series *series;
  (void)user;
  if (proxy_session_path(s, &path) != PROXY_OK) return PROXY_ERROR;
  if (proxy_metric_series(hits, &path, 1, &series) != PROXY_OK || proxy_series_add(series, 1) != PROXY_OK)
    return PROXY_ERROR;
  if (proxy_session_request_id(s, &id) == PROXY_OK && id.len < sizeof seen_id) {
    memcpy(seen_id, id.ptr, id.len);
    seen_id[id.len] = 0;
  }
  /* Nothing listens on `refused`: every request ends in a proxy-made 502. */
  return set_peer_str(s, refused) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

static proxy_action custom_error(void *user, uint32_t status, proxy_str what, proxy_error_page *page) {
  char body[256];
  proxy_header h = {{"x-custom", 8}, {"yes", 3}};
  int n = snprintf(body, sizeof body, "custom %u: %.*s\n", (unsigned)status, (int)what.len, what.ptr);
  (void)user;
  if (n < 0 || (size_t)n >= sizeof body) return PROXY_CONTINUE;
  CHECK_RC(proxy_error_page_set(page, 1000, NULL, 0, NULL, 0), PROXY_INVALID_PARAMETER);
  OK(proxy_error_page_set(page, status, &h, 1, (const uint8_t *)body, (size_t)n));
  return PROXY_RESPONDED;
}

static int count_lines(const char *path) {
  FILE *f = fopen(path, "r");
  int c, n = 0;
  if (!f) return -1;
  while ((c = fgetc(f)) != EOF) n += c == '\n';
  fclose(f);
  return n;
}

int main(void) {
  proxy_server *srv = NULL;
  proxy_service *svc = NULL;
  proxy_metric *m2 = NULL;
  proxy_http_callbacks cbs = callbacks_init(NULL);
  proxy_str label = {"path", 4}, bad = {"le", 2};
  uint16_t port = 0, mport = 0;
  static char buf[1 << 17];
  char log_path[64], rotated[80], errlog[80], line[512];
  FILE *ef;
  int listening = 0, answered = 0;
  int i, listener;
  struct sockaddr_in a;
  socklen_t alen = sizeof a;

  /* A port nothing listens on: bound, then closed. */
  listener = socket(AF_INET, SOCK_STREAM, 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(bind(listener, (struct sockaddr *)&a, sizeof a) == 0);
  CHECK(getsockname(listener, (struct sockaddr *)&a, &alen) == 0);
  snprintf(refused, sizeof refused, "127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
  close(listener);
  snprintf(log_path, sizeof log_path, "/tmp/libproxy-test-observe-%d.log", (int)getpid());
  snprintf(rotated, sizeof rotated, "%s.1", log_path);
  snprintf(errlog, sizeof errlog, "%s.err", log_path);
  remove(log_path);
  remove(rotated);
  remove(errlog);

  CHECK(proxy_features() & PROXY_FEATURE_METRICS);
  CHECK(proxy_features() & PROXY_FEATURE_ACCESS_LOG);
  OK(proxy_server_new(&srv));
  OK(proxy_server_set_log_file(srv, errlog, PROXY_LOG_INFO));
  OK(proxy_metric_new(srv, PROXY_METRIC_COUNTER, "t_hits", "Hits by path.", &label, 1, NULL, 0, &hits));
  /* The same definition is the same handle; a clash or a bad name is refused with its code. */
  OK(proxy_metric_new(srv, PROXY_METRIC_COUNTER, "t_hits_total", "Hits by path.", &label, 1, NULL, 0, &m2));
  CHECK(m2 == hits);
  CHECK_RC(proxy_metric_new(srv, PROXY_METRIC_GAUGE, "t_hits_total", "x", NULL, 0, NULL, 0, &m2), PROXY_METRIC_CONFLICT);
  CHECK_RC(proxy_metric_new(srv, PROXY_METRIC_GAUGE, "libproxy_mine", "x", NULL, 0, NULL, 0, &m2), PROXY_METRIC_INVALID);
  CHECK_RC(proxy_metric_new(srv, PROXY_METRIC_HISTOGRAM, "t_h", "x", &bad, 1, NULL, 0, &m2), PROXY_METRIC_INVALID);
  CHECK_RC(proxy_metric_new(srv, 9, "t_x", "x", NULL, 0, NULL, 0, &m2), PROXY_INVALID_PARAMETER);

  cbs.upstream_peer = peer;
  OK(proxy_service_new("obs", &svc));
  OK(proxy_service_add_tcp(svc, "127.0.0.1:0", &port));
  OK(proxy_service_set_callbacks(svc, &cbs));
  OK(proxy_service_set_limit(svc, PROXY_LIMIT_MAX_RETRIES, 0)); /* one attempt, one count per request */
  CHECK_RC(proxy_service_set_observe(svc, 1u << 20), PROXY_INVALID_PARAMETER);
  OK(proxy_service_set_observe(svc, PROXY_OBSERVE_METRICS | PROXY_OBSERVE_REQUEST_IDS | PROXY_OBSERVE_ERROR_LOG));
  CHECK_RC(proxy_service_set_access_log(svc, log_path, "$status $nope"), PROXY_LOG_FORMAT_INVALID);
  OK(proxy_service_set_access_log(svc, log_path, "json"));
  OK(proxy_service_set_error_response(svc, custom_error, NULL));
  OK(proxy_server_add_service(srv, svc));
  OK(proxy_server_add_metrics(srv, "127.0.0.1:0", &mport));
  CHECK(mport != 0);
  OK(proxy_server_start(srv));

  /* The upstream refuses: the host's page, with what happened, replaces the 502. */
  CHECK(http_get(port, "/a", buf, sizeof buf) == 502);
  CHECK(strstr(buf, "x-custom: yes") != NULL);
  CHECK(strstr(buf, "\r\n\r\ncustom 502: could not connect to the upstream\n") != NULL);
  CHECK(strlen(seen_id) == 32);
  /* A malformed request is refused before any phase: the host's page too. */
  CHECK(http_raw(port, "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", buf,
                 sizeof buf) == 400);
  CHECK(strstr(buf, "\r\n\r\ncustom 400: ") != NULL);
  /* Rotation: rename, reopen; the next line goes to a new file. */
  CHECK(rename(log_path, rotated) == 0);
  OK(proxy_server_reopen_logs(srv));
  for (i = 0; i < 2; i++) CHECK(http_get(port, "/b", buf, sizeof buf) == 502);

  CHECK(http_get(mport, "/metrics", buf, sizeof buf) == 200);
  CHECK(strstr(buf, "t_hits_total{path=\"/a\"} 1\n") != NULL);
  CHECK(strstr(buf, "t_hits_total{path=\"/b\"} 2\n") != NULL);
  CHECK(strstr(buf, "libproxy_requests_total{service=\"obs\",method=\"GET\",status=\"5xx\"} 3\n") != NULL);
  CHECK(strstr(buf, "libproxy_errors_total{service=\"obs\",kind=\"connect_refused\",source=\"upstream\"} 3\n") != NULL);
  CHECK(http_get(mport, "/nothing", buf, sizeof buf) == 404);

  OK(proxy_server_shutdown(srv, 1000));
  /* Shutdown flushed the access log: the 502 of /a in the old file, the two of /b in the new. */
  CHECK(count_lines(rotated) == 1);
  CHECK(count_lines(log_path) == 2);
  OK(proxy_server_free(srv));
  /* The server log file: startup lines and each proxy-made 502 with its cause. */
  ef = fopen(errlog, "r");
  CHECK(ef != NULL);
  while (fgets(line, sizeof line, ef)) {
    listening += strstr(line, "[info] service obs: listening on 127.0.0.1:") != NULL;
    answered += strstr(line, "[warn] obs 127.0.0.1:") != NULL && strstr(line, "answered 502") != NULL &&
                strstr(line, "upstream connect refused") != NULL;
  }
  fclose(ef);
  CHECK(listening == 1);
  CHECK(answered == 3);
  remove(log_path);
  remove(rotated);
  remove(errlog);
  printf("test_observe: ok\n");
  return 0;
}
