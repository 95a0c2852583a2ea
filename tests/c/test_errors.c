/* Errors carry their cause (proxy_last_error): an address in use and a permission refusal give the
 * same PROXY_IO but different, errno-style messages; the message is per thread, survives calls
 * that succeed, and truncates like snprintf. struct_size larger than the library knows is
 * accepted only with zero trailing bytes. */
#include "common.h"

#include <errno.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char msg[1024];

/* The calling thread's last error into msg; checks the length contract on the way. */
static const char *last(void) {
  size_t n = proxy_last_error(msg, sizeof msg);
  CHECK(n == strlen(msg));
  CHECK(proxy_last_error(NULL, 0) == n);
  return msg;
}

#define CHECK_MSG(sub)                                                                  \
  do {                                                                                  \
    if (strstr(last(), (sub)) == NULL) {                                                \
      fprintf(stderr, "%s:%d: last error \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, msg, \
              (sub));                                                                   \
      exit(1);                                                                          \
    }                                                                                   \
  } while (0)

static void *other_thread(void *arg) {
  char buf[16];
  (void)arg;
  /* Nothing failed on this thread: empty, whatever the main thread did. */
  buf[0] = 'x';
  CHECK(proxy_last_error(buf, sizeof buf) == 0 && buf[0] == 0);
  CHECK(proxy_last_error_code() == PROXY_OK);
  return NULL;
}

/* A listening socket on 127.0.0.1:0; its port in *port. */
static int listen_any(uint16_t *port) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(fd >= 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
  CHECK(listen(fd, 1) == 0);
  CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
  *port = ntohs(a.sin_port);
  return fd;
}

/* Run in a child without privileges: a port below 1024 and a socket in a directory it cannot
 * write both answer PROXY_IO with "Permission denied". */
static void permission_denied(const char *dir) {
  proxy_service *svc = NULL;
  char path[512];
  OK(proxy_service_new("unprivileged", &svc));
  CHECK_RC(proxy_service_add_tcp(svc, "127.0.0.1:1", NULL), PROXY_IO);
  CHECK_MSG(strerror(EACCES));
  CHECK_MSG("bind 127.0.0.1:1");
  CHECK(strstr(msg, strerror(EADDRINUSE)) == NULL);
  snprintf(path, sizeof path, "%s/proxy.sock", dir);
  CHECK_RC(proxy_service_add_uds(svc, path), PROXY_IO);
  CHECK_MSG(strerror(EACCES));
  CHECK_MSG(path);
  OK(proxy_service_free(svc));
}

int main(int argc, char **argv) {
  proxy_service *svc = NULL;
  proxy_http_callbacks cbs;
  struct {
    proxy_http_callbacks c;
    void *from_a_newer_header;
  } big;
  char addr[64], small[8], dir[] = "/tmp/proxy-test-errors-XXXXXX";
  uint16_t port;
  size_t n;
  pthread_t t;
  pid_t pid;
  int fd, st;
  (void)argc;
  (void)argv;

  CHECK(proxy_last_error(msg, sizeof msg) == 0 && msg[0] == 0);
  CHECK(proxy_last_error_code() == PROXY_OK);

  /* An address in use: PROXY_IO naming the address and the OS error. */
  fd = listen_any(&port);
  snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)port);
  OK(proxy_service_new("errors", &svc));
  CHECK_RC(proxy_service_add_tcp(svc, addr, NULL), PROXY_IO);
  CHECK(proxy_last_error_code() == PROXY_IO);
  CHECK_MSG(proxy_result_message(PROXY_IO));
  CHECK_MSG(strerror(EADDRINUSE));
  CHECK_MSG(addr);
  close(fd);

  /* Truncated like snprintf: the full length comes back, the buffer holds what fits. */
  n = strlen(last());
  CHECK(proxy_last_error(small, sizeof small) == n && n >= sizeof small);
  CHECK(strlen(small) == sizeof small - 1 && strncmp(small, msg, sizeof small - 1) == 0);

  /* A call that succeeds leaves it; another thread has its own. */
  OK(proxy_service_set_threads(svc, 2));
  CHECK_MSG(strerror(EADDRINUSE));
  CHECK(pthread_create(&t, NULL, other_thread, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK_MSG(strerror(EADDRINUSE));

  /* The next failure replaces it, each with its cause. */
  CHECK_RC(proxy_service_add_tcp(svc, "not an address", NULL), PROXY_INVALID_PARAMETER);
  CHECK_MSG("\"not an address\" is not an IP address with a port");
  CHECK_RC(proxy_service_set_threads(svc, 5000), PROXY_INVALID_PARAMETER);
  CHECK_MSG("5000 threads");
  CHECK_RC(proxy_service_set_timeout(svc, 999, 10), PROXY_INVALID_PARAMETER);
  CHECK_MSG("unknown timeout 999");
  CHECK_RC(proxy_service_new("x", NULL), PROXY_NULL_PARAMETER);
  CHECK_MSG("`out` is NULL");
  CHECK_RC(proxy_service_new("bad\xff", &svc), PROXY_INVALID_PARAMETER);
  CHECK_MSG("not UTF-8");
  CHECK_RC(proxy_session_resume(NULL, 1, PROXY_CONTINUE), PROXY_NULL_PARAMETER);
  CHECK(proxy_last_error_code() == PROXY_NULL_PARAMETER);
  /* A code with no more to say still gets its description. */
  CHECK_RC(proxy_service_add_uds(svc, ""), PROXY_INVALID_PARAMETER);
  CHECK_MSG("empty Unix socket path");

  /* A struct from a newer header: zero trailing bytes are fine, a set one is refused. */
  memset(&big, 0, sizeof big);
  big.c = callbacks_init(NULL);
  big.c.struct_size = (uint32_t)sizeof big;
  OK(proxy_service_set_callbacks(svc, &big.c));
  big.from_a_newer_header = &big;
  CHECK_RC(proxy_service_set_callbacks(svc, &big.c), PROXY_UNSUPPORTED);
  CHECK_MSG("struct_size");
  cbs = callbacks_init(NULL);
  OK(proxy_service_set_callbacks(svc, &cbs));
  OK(proxy_service_free(svc));

  /* Permission denied, from a process without privileges (root binds anywhere). */
  CHECK(mkdtemp(dir) != NULL);
  CHECK(chmod(dir, 0555) == 0);
  fflush(NULL);
  pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    if (geteuid() == 0) CHECK(setgid(65534) == 0 && setuid(65534) == 0);
    permission_denied(dir);
    _exit(0);
  }
  CHECK(waitpid(pid, &st, 0) == pid);
  rmdir(dir);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);

  puts("test_errors ok");
  return 0;
}
