/* Shared helpers for the C API tests: checks, a blocking HTTP/1.1 client, server set-up. */
#ifndef PROXY_TEST_COMMON_H
#define PROXY_TEST_COMMON_H

#define _POSIX_C_SOURCE 200809L
#include <proxy.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CHECK(cond)                                                         \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      exit(1);                                                              \
    }                                                                       \
  } while (0)

#define CHECK_RC(call, want)                                                       \
  do {                                                                             \
    proxy_result got_ = (call);                                                    \
    if (got_ != (proxy_result)(want)) {                                            \
      fprintf(stderr, "%s:%d: %s = %u (%s), want %u\n", __FILE__, __LINE__, #call, \
              (unsigned)got_, proxy_result_message(got_), (unsigned)(want));      \
      exit(1);                                                                     \
    }                                                                              \
  } while (0)

#define OK(call) CHECK_RC(call, PROXY_OK)

static inline int str_eq(proxy_str s, const char *c) {
  return s.len == strlen(c) && (s.len == 0 || memcmp(s.ptr, c, s.len) == 0);
}

static inline void sleep_ms(long ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  nanosleep(&ts, NULL);
}

/* Sends `req` (a full request; use Connection: close) to 127.0.0.1:port and reads the response
 * until EOF into buf. Returns the status code, or -1. */
static inline int http_raw(uint16_t port, const char *req, char *buf, size_t cap) {
  struct sockaddr_in a;
  size_t n = 0;
  ssize_t r;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int status = -1;
  struct timeval tv;
  if (fd < 0) return -1;
  tv.tv_sec = 10;
  tv.tv_usec = 0;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
    close(fd);
    return -1;
  }
  while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) > 0) n += (size_t)r;
  buf[n] = 0;
  close(fd);
  if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) return -1;
  return status;
}

/* GET `path` with Connection: close. */
static inline int http_get(uint16_t port, const char *path, char *buf, size_t cap) {
  char req[1024];
  snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", path);
  return http_raw(port, req, buf, cap);
}

static inline proxy_http_callbacks callbacks_init(void *user) {
  proxy_http_callbacks c;
  memset(&c, 0, sizeof c);
  c.struct_size = sizeof c;
  c.user = user;
  return c;
}

/* One proxy service on 127.0.0.1:0 with `cbs`; returns the started server, port in *port. */
static inline proxy_server *start_proxy(const proxy_http_callbacks *cbs, uint32_t pending_ms,
                                        uint16_t *port) {
  proxy_server *srv = NULL;
  proxy_service *svc = NULL;
  OK(proxy_server_new(&srv));
  OK(proxy_service_new("test", &svc));
  OK(proxy_service_add_tcp(svc, "127.0.0.1:0", port));
  OK(proxy_service_set_threads(svc, 2));
  if (pending_ms) OK(proxy_service_set_timeout(svc, PROXY_TIMEOUT_PENDING, pending_ms));
  OK(proxy_service_set_callbacks(svc, cbs));
  OK(proxy_server_add_service(srv, svc));
  OK(proxy_server_start(srv));
  return srv;
}

/* Sets the peer to the address in `addr` (NUL-terminated). */
static inline proxy_result set_peer_str(proxy_session *s, const char *addr) {
  proxy_peer p;
  memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.address = proxy_str_from_cstr(addr);
  return proxy_session_set_peer(s, &p);
}

#endif
