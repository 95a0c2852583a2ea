/* A host with SIGPIPE's default action (kill) survives clients that vanish mid-response: the
 * library keeps the signal off its own threads instead of changing the process's disposition. */
#include "common.h"

#include <dirent.h>
#include <signal.h>

#define BIG (4u << 20)
static uint8_t *big;

static proxy_action request_filter(void *user, proxy_session *s) {
  proxy_str path;
  (void)user;
  if (proxy_session_path(s, &path) != PROXY_OK) return PROXY_ERROR;
  if (str_eq(path, "/small")) {
    return proxy_session_respond(s, 200, NULL, 0, (const uint8_t *)"ok", 2) == PROXY_OK ? PROXY_RESPONDED : PROXY_ERROR;
  }
  return proxy_session_respond(s, 200, NULL, 0, big, BIG) == PROXY_OK ? PROXY_RESPONDED : PROXY_ERROR;
}

/* Asks for the big body, reads a little, then resets the connection. */
static void vanish(uint16_t port) {
  struct sockaddr_in a;
  struct linger lg;
  char buf[256];
  const char *req = "GET /big HTTP/1.1\r\nHost: t\r\n\r\n";
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(fd >= 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
  CHECK(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
  CHECK(read(fd, buf, sizeof buf) > 0);
  lg.l_onoff = 1;
  lg.l_linger = 0; /* RST on close: every later write of the proxy's fails */
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
}

/* Counts this process's threads named `prefix`* and, among them, those whose blocked-signal mask
 * (SigBlk in /proc/self/task/<tid>/status) holds SIGPIPE. */
static void count_threads(const char *prefix, int *named, int *blocked) {
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  *named = *blocked = 0;
  CHECK(d != NULL);
  while ((e = readdir(d)) != NULL) {
    char path[300], line[256], comm[64] = {0};
    FILE *f;
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    if ((f = fopen(path, "r")) == NULL) continue;
    if (fgets(comm, sizeof comm, f) == NULL) comm[0] = 0;
    fclose(f);
    if (strncmp(comm, prefix, strlen(prefix)) != 0) continue;
    (*named)++;
    snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
    if ((f = fopen(path, "r")) == NULL) continue;
    while (fgets(line, sizeof line, f) != NULL) {
      unsigned long long mask;
      if (sscanf(line, "SigBlk: %llx", &mask) == 1 && (mask & (1ULL << (SIGPIPE - 1)))) (*blocked)++;
    }
    fclose(f);
  }
  closedir(d);
}

int main(void) {
  proxy_http_callbacks cbs = callbacks_init(NULL);
  proxy_server *srv;
  uint16_t port = 0;
  char buf[4096];
  int i;
  signal(SIGPIPE, SIG_DFL);
  big = malloc(BIG);
  CHECK(big != NULL);
  memset(big, 'x', BIG);
  cbs.request_filter = request_filter;
  srv = start_proxy(&cbs, 0, &port);
  {
    /* The mechanism, deterministically: every worker thread ("test-<i>") blocks SIGPIPE, while
     * the host's own thread keeps whatever it had (here: nothing blocked, default action). */
    int named, blocked;
    sigset_t mine;
    sleep_ms(100);
    count_threads("test-", &named, &blocked);
    CHECK(named == 2);
    CHECK(blocked == named);
    CHECK(pthread_sigmask(SIG_BLOCK, NULL, &mine) == 0);
    CHECK(!sigismember(&mine, SIGPIPE));
  }
  /* And the effect: clients that reset mid-response do not take the host down. */
  for (i = 0; i < 20; i++) vanish(port);
  sleep_ms(200);
  CHECK(http_get(port, "/small", buf, sizeof buf) == 200);
  OK(proxy_server_shutdown(srv, 1000));
  OK(proxy_server_free(srv));
  free(big);
  printf("test_sigpipe: ok\n");
  return 0;
}
