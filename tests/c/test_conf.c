/* Configuration from C: the command line keeps the host's arguments, keys round-trip through
 * proxy_conf_get, a bad file names its line and key, a group from the file serves requests, and
 * a reload moves it to another backend while a listener change is refused. */
#include "common.h"

#include <sys/stat.h>

/* An origin answering with its own name. */
static proxy_action origin(void *user, proxy_session *s) {
  const char *name = (const char *)user;
  proxy_header h;
  h.name = proxy_str_from_cstr("cache-control");
  h.value = proxy_str_from_cstr("no-store");
  if (proxy_session_respond(s, 200, &h, 1, (const uint8_t *)name, strlen(name)) != PROXY_OK) return PROXY_ERROR;
  return PROXY_RESPONDED;
}

static uint64_t group_id;

static proxy_action pick(void *user, proxy_session *s) {
  (void)user;
  return proxy_session_pick(s, group_id, proxy_str_from_cstr("")) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  CHECK(fputs(text, f) >= 0);
  CHECK(fclose(f) == 0);
}

static const char *yaml(char *buf, size_t cap, const char *sock, uint16_t backend, const char *level) {
  snprintf(buf, cap,
           "grace_period_seconds: 3\n"
           "log_level: %s\n"
           "limits:\n"
           "  header_timeout_ms: 4000\n"
           "services:\n"
           "  proxy:\n"
           "    threads: 2\n"
           "    listeners:\n"
           "      - address: unix:%s\n"
           "upstreams:\n"
           "  app:\n"
           "    backends: [127.0.0.1:%u]\n",
           level, sock, (unsigned)backend);
  return buf;
}

static void expect_get(const proxy_conf *c, const char *key, const char *want) {
  proxy_str v;
  OK(proxy_conf_get(c, key, &v));
  if (!str_eq(v, want)) {
    fprintf(stderr, "%s = %.*s, want %s\n", key, (int)v.len, (const char *)v.ptr, want);
    exit(1);
  }
}

int main(void) {
  char path[128], sock[128], text[1024], buf[4096], err[512];
  char arg0[] = "prog", arg1[] = "-c", arg3[] = "positional", arg4[] = "-x";
  char *argv[6];
  int argc = 5;
  proxy_conf *conf = NULL;
  proxy_server *srv = NULL;
  proxy_service *o1 = NULL, *o2 = NULL, *svc = NULL;
  uint16_t p1 = 0, p2 = 0, port = 0;
  proxy_http_callbacks cbs;
  struct stat st;
  uint32_t flags = 0;
  proxy_str v;

  snprintf(path, sizeof path, "/tmp/libproxy-test-conf-%d.yaml", (int)getpid());
  snprintf(sock, sizeof sock, "/tmp/libproxy-test-conf-%d.sock", (int)getpid());
  CHECK((proxy_features() & PROXY_FEATURE_CONFIG) && (proxy_features() & PROXY_FEATURE_UPGRADE));

  /* Two origins, then a file naming the first. */
  OK(proxy_server_new(&srv));
  cbs = callbacks_init((void *)"one");
  cbs.request_filter = origin;
  OK(proxy_service_new("origin1", &o1));
  OK(proxy_service_add_tcp(o1, "127.0.0.1:0", &p1));
  OK(proxy_service_set_callbacks(o1, &cbs));
  OK(proxy_server_add_service(srv, o1));
  cbs = callbacks_init((void *)"two");
  cbs.request_filter = origin;
  OK(proxy_service_new("origin2", &o2));
  OK(proxy_service_add_tcp(o2, "127.0.0.1:0", &p2));
  OK(proxy_service_set_callbacks(o2, &cbs));
  OK(proxy_server_add_service(srv, o2));
  write_file(path, yaml(text, sizeof text, sock, p1, "info"));

  /* The library takes -c FILE and leaves the host's arguments, in order. */
  argv[0] = arg0, argv[1] = arg1, argv[2] = path, argv[3] = arg3, argv[4] = arg4, argv[5] = NULL;
  OK(proxy_conf_from_args(&argc, argv, &conf));
  CHECK(argc == 3 && argv[0] == arg0 && argv[1] == arg3 && argv[2] == arg4 && argv[3] == NULL);
  expect_get(conf, "grace_period_seconds", "3");
  expect_get(conf, "limits.header_timeout_ms", "4000");
  expect_get(conf, "services.proxy.limits.header_timeout_ms", "4000");
  expect_get(conf, "services.proxy.threads", "2");
  expect_get(conf, "threads", "1");
  CHECK_RC(proxy_conf_get(conf, "no.such.key", &v), PROXY_NOT_FOUND);
  OK(proxy_conf_flags(conf, &flags));
  CHECK(flags == 0);

  /* The group from the file serves requests; the service's listener from the file is bound. */
  OK(proxy_conf_group(conf, "app", &group_id));
  OK(proxy_server_set_conf(srv, conf));
  OK(proxy_service_new("proxy", &svc));
  OK(proxy_service_apply_conf(svc, conf));
  CHECK(stat(sock, &st) == 0 && S_ISSOCK(st.st_mode));
  OK(proxy_service_add_tcp(svc, "127.0.0.1:0", &port));
  cbs = callbacks_init(NULL);
  cbs.upstream_peer = pick;
  OK(proxy_service_set_callbacks(svc, &cbs));
  OK(proxy_server_add_service(srv, svc));
  OK(proxy_server_start(srv));
  CHECK(http_get(port, "/", buf, sizeof buf) == 200 && strstr(buf, "\r\n\r\none") != NULL);

  /* Reload: the group moves to the second origin, the effective values follow. */
  write_file(path, yaml(text, sizeof text, sock, p2, "warn"));
  OK(proxy_server_reload(srv));
  CHECK(http_get(port, "/", buf, sizeof buf) == 200 && strstr(buf, "\r\n\r\ntwo") != NULL);
  expect_get(conf, "log_level", "warn");
  snprintf(buf, sizeof buf, "127.0.0.1:%u", (unsigned)p2);
  expect_get(conf, "upstreams.app.backends.0.address", buf);

  /* A listener change needs an upgrade: refused, nothing applied. */
  write_file(path, yaml(text, sizeof text, "/tmp/elsewhere.sock", p1, "warn"));
  CHECK_RC(proxy_server_reload(srv), PROXY_RELOAD_REFUSED);
  proxy_last_error(err, sizeof err);
  CHECK(strstr(err, "services.proxy.listeners.0.address") != NULL && strstr(err, "upgrade") != NULL);
  CHECK(http_get(port, "/", buf, sizeof buf) == 200 && strstr(buf, "\r\n\r\ntwo") != NULL);

  /* A bad file: the code, and the line and key in the last error. */
  write_file(path, "threads: 2\nlimits:\n  max_headers: lots\n");
  argc = 3, argv[0] = arg0, argv[1] = arg1, argv[2] = path;
  {
    proxy_conf *bad = NULL;
    CHECK_RC(proxy_conf_from_args(&argc, argv, &bad), PROXY_CONFIG_INVALID);
    CHECK(bad == NULL && argc == 3);
  }
  proxy_last_error(err, sizeof err);
  CHECK(strstr(err, ".yaml:3:16: limits.max_headers: expected a whole number") != NULL);
  argc = 2, argv[1] = arg1; /* -c without a file */
  CHECK_RC(proxy_conf_from_args(&argc, argv, &conf), PROXY_CONFIG_INVALID);
  /* NULL checks. */
  CHECK_RC(proxy_conf_from_args(NULL, argv, &conf), PROXY_NULL_PARAMETER);
  CHECK_RC(proxy_conf_get(NULL, "threads", &v), PROXY_NULL_PARAMETER);
  OK(proxy_conf_free(NULL));

  OK(proxy_server_shutdown(srv, 1000));
  CHECK(stat(sock, &st) != 0); /* the Unix socket file went with the server */
  OK(proxy_server_free(srv));
  OK(proxy_conf_free(conf));
  OK(proxy_group_free(group_id));
  unlink(path);
  printf("test_conf ok\n");
  return 0;
}
