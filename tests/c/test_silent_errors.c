/* Host mistakes and cut responses are never silent: an upstream_peer that chooses no peer,
 * RESPONDED without a response and proxy_session_respond followed by CONTINUE are each logged at
 * PROXY_LOG_WARN with their cause; the response set before CONTINUE is sent as given; a second
 * proxy_session_respond is ALREADY; the proxy's error pages name their status; a response the
 * origin cuts short is truncated (with error_status and the reason) in the logging summary. */
#include "common.h"

static char origin[64];
static volatile int mode;
static volatile int second_respond_rc = -1;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char warnings[8192];
static unsigned logged;
static proxy_summary last_sum;
static char last_error[512];

static void log_sink(void *user, uint32_t level, proxy_str msg) {
  size_t n;
  (void)user;
  if (level != PROXY_LOG_WARN) return;
  pthread_mutex_lock(&mu);
  n = strlen(warnings);
  if (n + msg.len + 2 < sizeof warnings) {
    memcpy(warnings + n, msg.ptr, msg.len);
    warnings[n + msg.len] = '\n';
    warnings[n + msg.len + 1] = 0;
  }
  pthread_mutex_unlock(&mu);
}

static int warned(const char *needle) {
  int found;
  pthread_mutex_lock(&mu);
  found = strstr(warnings, needle) != NULL;
  pthread_mutex_unlock(&mu);
  return found;
}

static proxy_action request_filter(void *user, proxy_session *s) {
  proxy_header h[1];
  (void)user;
  h[0].name = proxy_str_from_cstr("x-answered");
  h[0].value = proxy_str_from_cstr("by-host");
  switch (mode) {
    case 1: /* respond, then the wrong action: the response still wins */
      OK(proxy_session_respond(s, 403, h, 1, (const uint8_t *)"denied\n", 7));
      return PROXY_CONTINUE;
    case 2: /* RESPONDED without a response */
      return PROXY_RESPONDED;
    case 3: /* two answers: the second is refused, the first stands */
      OK(proxy_session_respond(s, 401, h, 1, (const uint8_t *)"first\n", 6));
      second_respond_rc = (int)proxy_session_respond(s, 200, NULL, 0, (const uint8_t *)"second\n", 7);
      return PROXY_RESPONDED;
    default: return PROXY_CONTINUE;
  }
}

static proxy_action upstream_peer(void *user, proxy_session *s) {
  (void)user;
  if (mode == 4) return PROXY_CONTINUE; /* no peer chosen */
  return set_peer_str(s, origin) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

static proxy_action logging(void *user, proxy_session *s) {
  proxy_summary sum;
  proxy_str e;
  (void)user;
  memset(&sum, 0, sizeof sum);
  sum.struct_size = sizeof sum;
  OK(proxy_session_summary(s, &sum));
  pthread_mutex_lock(&mu);
  last_sum = sum;
  last_error[0] = 0;
  if (proxy_session_error(s, &e) == PROXY_OK) {
    size_t n = e.len < sizeof last_error - 1 ? e.len : sizeof last_error - 1;
    memcpy(last_error, e.ptr, n);
    last_error[n] = 0;
  }
  logged++;
  pthread_mutex_unlock(&mu);
  return PROXY_CONTINUE;
}

/* Waits (bounded) for the logging call of request number `n`. */
static void wait_logged(unsigned n) {
  int i;
  for (i = 0; i < 500; i++) {
    unsigned got;
    pthread_mutex_lock(&mu);
    got = logged;
    pthread_mutex_unlock(&mu);
    if (got >= n) return;
    sleep_ms(10);
  }
  fprintf(stderr, "logging was not called for request %u\n", n);
  exit(1);
}

/* An origin that announces 1,000 body bytes, sends 500 and closes; returns its port. */
static void *cutting_origin(void *arg) {
  int l = *(int *)arg;
  for (;;) {
    char buf[4096];
    char out[1024];
    int c = accept(l, NULL, NULL);
    int n;
    if (c < 0) return NULL;
    n = (int)read(c, buf, sizeof buf);
    (void)n;
    n = snprintf(out, sizeof out, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    memset(out + n, 'a', 500);
    CHECK(write(c, out, (size_t)n + 500) == n + 500);
    close(c);
  }
}

static uint16_t start_cutting_origin(void) {
  static int l;
  pthread_t t;
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  l = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(l >= 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0);
  CHECK(listen(l, 16) == 0);
  CHECK(getsockname(l, (struct sockaddr *)&a, &len) == 0);
  CHECK(pthread_create(&t, NULL, cutting_origin, &l) == 0);
  CHECK(pthread_detach(t) == 0);
  return ntohs(a.sin_port);
}

int main(int argc, char **argv) {
  proxy_http_callbacks cbs;
  proxy_server *srv = NULL;
  proxy_service *svc = NULL;
  uint16_t port;
  char buf[8192];
  unsigned n = 0;
  CHECK(argc > 1);
  snprintf(origin, sizeof origin, "%s", argv[1]);
  cbs = callbacks_init(NULL);
  cbs.request_filter = request_filter;
  cbs.upstream_peer = upstream_peer;
  cbs.logging = logging;
  OK(proxy_server_new(&srv));
  OK(proxy_server_set_log(srv, log_sink, NULL, PROXY_LOG_WARN));
  OK(proxy_service_new("test", &svc));
  OK(proxy_service_add_tcp(svc, "127.0.0.1:0", &port));
  OK(proxy_service_set_callbacks(svc, &cbs));
  OK(proxy_server_add_service(srv, svc));
  OK(proxy_server_start(srv));

  /* respond + CONTINUE: sent as given, nothing forwarded, warned. */
  mode = 1;
  CHECK(http_get(port, "/echo", buf, sizeof buf) == 403);
  CHECK(strstr(buf, "x-answered: by-host") != NULL);
  CHECK(strstr(buf, "\r\n\r\ndenied\n") != NULL);
  CHECK(strstr(buf, "GET /echo") == NULL); /* the echo origin never saw it */
  wait_logged(++n);
  CHECK(warned("request_filter: returned PROXY_CONTINUE after proxy_session_respond"));

  /* RESPONDED without a response: 500 with its page, warned, the cause in the summary. */
  mode = 2;
  CHECK(http_get(port, "/echo", buf, sizeof buf) == 500);
  CHECK(strstr(buf, "\r\n\r\n500 Internal Server Error: the request could not be handled\n") != NULL);
  CHECK(strstr(buf, "content-length: 60") != NULL || strstr(buf, "Content-Length: 60") != NULL);
  wait_logged(++n);
  CHECK(warned("request_filter: returned PROXY_RESPONDED without proxy_session_respond"));
  pthread_mutex_lock(&mu);
  CHECK(last_sum.error_status == 500 && !last_sum.truncated);
  CHECK(strstr(last_error, "without proxy_session_respond") != NULL);
  pthread_mutex_unlock(&mu);

  /* A second respond is refused; the first answer goes out. */
  mode = 3;
  CHECK(http_get(port, "/echo", buf, sizeof buf) == 401);
  CHECK(strstr(buf, "\r\n\r\nfirst\n") != NULL);
  CHECK(second_respond_rc == PROXY_ALREADY);
  wait_logged(++n);

  /* upstream_peer without a peer: 500, warned with the cause. */
  mode = 4;
  CHECK(http_get(port, "/echo", buf, sizeof buf) == 500);
  CHECK(strstr(buf, "\r\n\r\n500 Internal Server Error: the request could not be handled\n") != NULL);
  wait_logged(++n);
  CHECK(warned("upstream_peer: returned PROXY_CONTINUE without proxy_session_set_peer"));
  CHECK(warned("(GET /echo)"));
  pthread_mutex_lock(&mu);
  CHECK(strstr(last_error, "without proxy_session_set_peer") != NULL);
  pthread_mutex_unlock(&mu);

  /* A complete response is no error. */
  mode = 0;
  CHECK(http_get(port, "/echo", buf, sizeof buf) == 200);
  wait_logged(++n);
  pthread_mutex_lock(&mu);
  CHECK(last_sum.status == 200 && last_sum.error_status == 0 && !last_sum.truncated);
  CHECK(last_error[0] == 0);
  pthread_mutex_unlock(&mu);

  /* The origin cuts a 1,000-byte body at 500: the summary says truncated, not "200, 500 bytes". */
  snprintf(origin, sizeof origin, "127.0.0.1:%u", (unsigned)start_cutting_origin());
  {
    int st = http_get(port, "/cut", buf, sizeof buf);
    CHECK(st == 200);
  }
  wait_logged(++n);
  pthread_mutex_lock(&mu);
  CHECK(last_sum.status == 200 && last_sum.bytes_out == 500);
  CHECK(last_sum.truncated == 1);
  CHECK(last_sum.error_status == 502);
  CHECK(strstr(last_error, "response truncated (200 sent, 500 body bytes)") != NULL);
  pthread_mutex_unlock(&mu);

  OK(proxy_server_free(srv));
  puts("test_silent_errors ok");
  return 0;
}
