/* The L4 (TCP) proxy and the PROXY protocol from C. A client sends a PROXY v1 header and a
 * request to an HTTP service, which sends the request on with a v2 header (PROXY_PEER_SEND_PROXY_V2)
 * to an L4 service requiring one, which relays it to the test origin: the L4 hook sees the address
 * the client's v1 header carried, the HTTP hook the authority TLV of a v2 header, the L4 summary
 * the bytes each way and the idle timeout that closed the pooled connection (logged); a
 * malformed header is closed and logged; option and argument errors.
 * argv[1] is the test origin. A failed CHECK in a callback exits the program from its thread. */
#include "common.h"

static char origin[64];
static uint16_t l4_port;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int l4_logged, malformed_logged, idle_logged;
static char l4_client[64], http_authority[64];
static proxy_l4_summary last;

static void copy_str(char *dst, size_t cap, proxy_str s) {
  size_t n = s.len < cap - 1 ? s.len : cap - 1;
  memcpy(dst, s.ptr, n);
  dst[n] = 0;
}

static int contains(proxy_str s, const char *word) {
  size_t i, n = strlen(word);
  for (i = 0; i + n <= s.len; i++)
    if (memcmp(s.ptr + i, word, n) == 0) return 1;
  return 0;
}

static void on_log(void *user, uint32_t level, proxy_str msg) {
  (void)user;
  pthread_mutex_lock(&mu);
  if (level == PROXY_LOG_WARN && contains(msg, "malformed")) malformed_logged++;
  if (level == PROXY_LOG_INFO && contains(msg, "closed: idle timeout")) idle_logged++;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

static proxy_action l4_peer(void *user, proxy_l4_session *s) {
  proxy_str v;
  proxy_peer p;
  (void)user;
  CHECK_RC(proxy_l4_session_client_addr(NULL, &v), PROXY_NULL_PARAMETER);
  OK(proxy_l4_session_client_addr(s, &v));
  pthread_mutex_lock(&mu);
  copy_str(l4_client, sizeof l4_client, v);
  pthread_mutex_unlock(&mu);
  CHECK_RC(proxy_l4_session_sni(s, &v), PROXY_NOT_FOUND);
  CHECK_RC(proxy_l4_session_alpn(s, 0, &v), PROXY_NOT_FOUND);
  CHECK_RC(proxy_l4_session_proxy_tlv(s, PROXY_PP2_TYPE_UNIQUE_ID, &v), PROXY_NOT_FOUND);
  CHECK_RC(proxy_l4_session_pick(s, 999999999, proxy_str_from_cstr("k")), PROXY_GONE);
  memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.address = proxy_str_from_cstr(origin);
  p.flags = PROXY_PEER_SEND_PROXY_V1 | PROXY_PEER_SEND_PROXY_V2;
  CHECK_RC(proxy_l4_session_set_peer(s, &p), PROXY_INVALID_PARAMETER);
  p.flags = 0;
  OK(proxy_l4_session_set_peer(s, &p));
  return PROXY_CONTINUE;
}

static proxy_action l4_logging(void *user, proxy_l4_session *s) {
  proxy_l4_summary sum;
  proxy_peer p;
  (void)user;
  memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.address = proxy_str_from_cstr(origin);
  CHECK_RC(proxy_l4_session_set_peer(s, &p), PROXY_WRONG_PHASE);
  memset(&sum, 0, sizeof sum);
  sum.struct_size = sizeof sum;
  OK(proxy_l4_session_summary(s, &sum));
  pthread_mutex_lock(&mu);
  last = sum;
  l4_logged++;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
  return PROXY_CONTINUE;
}

static proxy_action http_peer(void *user, proxy_session *s) {
  proxy_str v;
  proxy_peer p;
  char addr[32];
  (void)user;
  if (proxy_session_proxy_tlv(s, PROXY_PP2_TYPE_AUTHORITY, &v) == PROXY_OK) {
    pthread_mutex_lock(&mu);
    copy_str(http_authority, sizeof http_authority, v);
    pthread_mutex_unlock(&mu);
  }
  memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)l4_port);
  p.address = proxy_str_from_cstr(addr);
  p.flags = PROXY_PEER_SEND_PROXY_V2;
  return proxy_session_set_peer(s, &p) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

/* A PROXY v2 header from 203.0.113.9:777 with an authority TLV. */
static size_t v2_header(unsigned char *h) {
  static const unsigned char sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
  static const unsigned char body[] = {203, 113, 0, 9,   127, 0, 0, 1, 0x03, 0x09, 0, 80,
                                       0x02, 0, 11, 'a', 'p', 'i', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e'};
  memcpy(h, sig, 12);
  h[12] = 0x21;
  h[13] = 0x11;
  h[14] = 0;
  h[15] = sizeof body;
  memcpy(h + 16, body, sizeof body);
  return 16 + sizeof body;
}

int main(int argc, char **argv) {
  proxy_server *srv = NULL;
  proxy_service *l4 = NULL, *http = NULL;
  proxy_l4_callbacks lc;
  proxy_http_callbacks hc = callbacks_init(NULL);
  uint16_t http_port = 0;
  char buf[4096], req[512];
  unsigned char hdr[64];
  size_t n;
  int status;
  CHECK(argc > 1);
  snprintf(origin, sizeof origin, "%s", argv[1]);
  CHECK((proxy_features() & PROXY_FEATURE_L4) && (proxy_features() & PROXY_FEATURE_PROXY_PROTOCOL));

  OK(proxy_server_new(&srv));
  OK(proxy_server_set_log(srv, on_log, NULL, PROXY_LOG_INFO));
  OK(proxy_service_new("l4", &l4));
  CHECK_RC(proxy_service_set_l4_option(l4, PROXY_L4_IDLE_TIMEOUT_MS, 1000), PROXY_WRONG_STATE);
  memset(&lc, 0, sizeof lc);
  lc.struct_size = sizeof lc;
  CHECK_RC(proxy_service_set_l4_callbacks(l4, &lc), PROXY_INVALID_PARAMETER); /* no upstream_peer */
  lc.upstream_peer = l4_peer;
  lc.logging = l4_logging;
  OK(proxy_service_set_l4_callbacks(l4, &lc));
  OK(proxy_service_set_l4_option(l4, PROXY_L4_IDLE_TIMEOUT_MS, 300));
  CHECK_RC(proxy_service_set_l4_option(l4, PROXY_L4_BUFFER_SIZE, 10), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_service_set_l4_option(l4, 99, 1), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_service_set_proxy_protocol(l4, 7, NULL, 0), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_service_set_proxy_protocol(l4, PROXY_PP_REQUIRED, "10.0.0.0/33", 0), PROXY_INVALID_PARAMETER);
  OK(proxy_service_set_proxy_protocol(l4, PROXY_PP_REQUIRED, "127.0.0.1/32, ::1", 2000));
  OK(proxy_service_add_tcp(l4, "127.0.0.1:0", &l4_port));
  OK(proxy_server_add_service(srv, l4));

  OK(proxy_service_new("http", &http));
  hc.upstream_peer = http_peer;
  OK(proxy_service_set_callbacks(http, &hc));
  OK(proxy_service_set_proxy_protocol(http, PROXY_PP_OPTIONAL, "", 0));
  OK(proxy_service_add_tcp(http, "127.0.0.1:0", &http_port));
  OK(proxy_server_add_service(srv, http));
  OK(proxy_server_start(srv));

  /* v1 from the client -> HTTP service -> v2 -> L4 service -> origin. */
  snprintf(req, sizeof req,
           "PROXY TCP4 198.51.100.7 127.0.0.1 999 80\r\nGET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  status = http_raw(http_port, req, buf, sizeof buf);
  CHECK(status == 200);
  pthread_mutex_lock(&mu);
  while (l4_logged < 1) pthread_cond_wait(&cv, &mu);
  CHECK(strcmp(l4_client, "198.51.100.7:999") == 0);
  /* The HTTP service pools its connection to the L4 service, which closes it when idle. */
  CHECK(last.end == PROXY_L4_IDLE_TIMEOUT && last.bytes_up > 0 && last.bytes_down > 0 && last.connect_us > 0);
  while (idle_logged < 1) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);

  /* A v2 header with an authority TLV straight to the HTTP service. */
  n = v2_header(hdr);
  memcpy(req, hdr, n);
  snprintf(req + n, sizeof req - n, "GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  {
    /* http_raw sends with strlen: the header holds NULs, so send it by hand. */
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    size_t len = n + strlen(req + n), got = 0;
    ssize_t r;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(http_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(write(fd, req, len) == (ssize_t)len);
    while ((r = read(fd, buf + got, sizeof buf - 1 - got)) > 0) got += (size_t)r;
    buf[got] = 0;
    close(fd);
    CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
  }
  pthread_mutex_lock(&mu);
  CHECK(strcmp(http_authority, "api.example") == 0);
  while (l4_logged < 2) pthread_cond_wait(&cv, &mu);
  CHECK(strcmp(l4_client, "203.113.0.9:777") == 0);
  pthread_mutex_unlock(&mu);

  /* A malformed header on the L4 endpoint: closed unanswered, logged. */
  status = http_raw(l4_port, "PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\nGET / HTTP/1.1\r\n\r\n", buf, sizeof buf);
  CHECK(status == -1 && buf[0] == 0);
  pthread_mutex_lock(&mu);
  while (malformed_logged < 1) pthread_cond_wait(&cv, &mu);
  CHECK(l4_logged == 2); /* refused before any hook */
  pthread_mutex_unlock(&mu);

  OK(proxy_server_free(srv));
  printf("l4 ok\n");
  return 0;
}
