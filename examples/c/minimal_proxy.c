/* A minimal caching, compressing reverse proxy: listen on argv[1] (default 127.0.0.1:8080) and
 * forward every request to argv[2]. Without argv[2] it also starts an embedded demo origin (a second
 * service answering every request itself, cacheable for a minute), so `./minimal_proxy` works out
 * of the box; the second curl is a cache hit (x-cache-status: HIT):
 *
 *   ./minimal_proxy 127.0.0.1:8080 &  curl -i http://127.0.0.1:8080/hello; curl -i http://127.0.0.1:8080/hello
 *
 * Stop with Ctrl-C (fast) or SIGTERM (graceful). Pingora's flags are the library's: -c FILE (a YAML
 * configuration: grace period, limits, pid file, ...), -d (daemon), -t (test the configuration),
 * -u (take the listening sockets over from the running proxy, which SIGQUIT hands them to);
 * SIGHUP reloads the file:
 *
 *   ./minimal_proxy -c proxy.yaml 127.0.0.1:8080 & ./minimal_proxy -u -c proxy.yaml 127.0.0.1:8080 & kill -QUIT %1 */
#include <proxy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(call)                                                                              \
  do {                                                                                           \
    proxy_result r_ = (call);                                                                    \
    if (r_ != PROXY_OK) {                                                                        \
      fprintf(stderr, "%s failed: %s (%u)\n", #call, proxy_result_message(r_), (unsigned)r_);    \
      exit(1);                                                                                   \
    }                                                                                            \
  } while (0)

struct config {
  char upstream[256];
};

/* upstream_peer: every request goes to the configured upstream. */
static proxy_action pick_upstream(void *user, proxy_session *s) {
  const struct config *cfg = (const struct config *)user;
  proxy_peer peer;
  memset(&peer, 0, sizeof peer);
  peer.struct_size = sizeof peer;
  peer.address = proxy_str_from_cstr(cfg->upstream);
  return proxy_session_set_peer(s, &peer) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

/* What the cache did, by PROXY_CACHE_STATUS_*. */
static const char *const cache_names[] = {"-", "HIT", "MISS", "STALE", "REVALIDATED", "EXPIRED", "BYPASS"};

/* logging: one access-log line per request, with what the cache did. A failed request says why;
 * one whose response was cut short (head sent, body incomplete) says so instead of looking like a
 * plain 200. */
static proxy_action access_log(void *user, proxy_session *s) {
  proxy_str method, path, error;
  proxy_summary sum;
  uint32_t cached = PROXY_CACHE_STATUS_NONE;
  (void)user;
  memset(&sum, 0, sizeof sum);
  sum.struct_size = sizeof sum;
  if (proxy_session_method(s, &method) != PROXY_OK || proxy_session_path(s, &path) != PROXY_OK ||
      proxy_session_summary(s, &sum) != PROXY_OK)
    return PROXY_CONTINUE;
  if (proxy_session_error(s, &error) != PROXY_OK) error.len = 0;
  if (proxy_session_cache_status(s, &cached) != PROXY_OK || cached > PROXY_CACHE_STATUS_BYPASS) cached = 0;
  printf("%.*s %.*s -> %u%s, %llu bytes, %llu us, cache %s%s%.*s\n", (int)method.len, method.ptr,
         (int)path.len, path.ptr, (unsigned)sum.status, sum.truncated ? " TRUNCATED" : "",
         (unsigned long long)sum.bytes_out, (unsigned long long)sum.total_us, cache_names[cached],
         error.len ? ", error: " : "", (int)error.len, error.len ? error.ptr : "");
  fflush(stdout);
  return PROXY_CONTINUE;
}

/* The demo origin's request_filter: answer every request here, cacheable for a minute. */
static proxy_action demo_origin(void *user, proxy_session *s) {
  char body[512];
  proxy_str path;
  proxy_header h[2];
  int n;
  (void)user;
  if (proxy_session_path(s, &path) != PROXY_OK) return PROXY_ERROR;
  n = snprintf(body, sizeof body, "hello from the libproxy demo origin, you asked for %.*s\n",
               (int)path.len, path.ptr);
  if (n < 0 || (size_t)n >= sizeof body) n = (int)sizeof body - 1;
  h[0].name = proxy_str_from_cstr("content-type");
  h[0].value = proxy_str_from_cstr("text/plain");
  h[1].name = proxy_str_from_cstr("cache-control");
  h[1].value = proxy_str_from_cstr("max-age=60");
  if (proxy_session_respond(s, 200, h, 2, (const uint8_t *)body, (size_t)n) != PROXY_OK)
    return PROXY_ERROR;
  return PROXY_RESPONDED;
}

static void log_line(void *user, uint32_t level, proxy_str msg) {
  (void)user;
  fprintf(stderr, "libproxy[%u]: %.*s\n", (unsigned)level, (int)msg.len, msg.ptr);
}

int main(int argc, char **argv) {
  const char *listen;
  static struct config cfg;
  proxy_conf *conf = NULL;
  proxy_server *server = NULL;
  proxy_service *svc = NULL;
  proxy_cache *cache = NULL;
  proxy_http_callbacks cbs;
  uint16_t port = 0;

  if ((proxy_abi_version() >> 16) != PROXY_ABI_VERSION_MAJOR) {
    fprintf(stderr, "libproxy ABI mismatch\n");
    return 1;
  }
  /* Takes -c/-d/-t/-u out of argv; the positional arguments stay. */
  if (proxy_conf_from_args(&argc, argv, &conf) != PROXY_OK) {
    char msg[512];
    proxy_last_error(msg, sizeof msg);
    fprintf(stderr, "%s\n", msg);
    return 1;
  }
  listen = argc > 1 ? argv[1] : "127.0.0.1:8080";
  CHECK(proxy_server_new(&server));
  CHECK(proxy_server_set_log(server, log_line, NULL, PROXY_LOG_INFO));
  CHECK(proxy_server_set_conf(server, conf));

  if (argc > 2) {
    snprintf(cfg.upstream, sizeof cfg.upstream, "%s", argv[2]);
  } else {
    proxy_service *origin = NULL;
    memset(&cbs, 0, sizeof cbs);
    cbs.struct_size = sizeof cbs;
    cbs.request_filter = demo_origin;
    CHECK(proxy_service_new("demo-origin", &origin));
    CHECK(proxy_service_add_tcp(origin, "127.0.0.1:0", &port));
    CHECK(proxy_service_set_callbacks(origin, &cbs));
    CHECK(proxy_server_add_service(server, origin));
    snprintf(cfg.upstream, sizeof cfg.upstream, "127.0.0.1:%u", (unsigned)port);
    printf("demo origin on %s\n", cfg.upstream);
  }

  memset(&cbs, 0, sizeof cbs);
  cbs.struct_size = sizeof cbs;
  cbs.user = &cfg;
  cbs.upstream_peer = pick_upstream;
  cbs.logging = access_log;
  CHECK(proxy_service_new("proxy", &svc));
  CHECK(proxy_service_set_threads(svc, 2));
  /* threads, limits and listeners of services.proxy in the file, if any */
  CHECK(proxy_service_apply_conf(svc, conf));
  CHECK(proxy_conf_free(conf));
  CHECK(proxy_service_add_tcp(svc, listen, &port));
  /* gzip, brotli or zstd for text responses, as each client's Accept-Encoding asks. */
  CHECK(proxy_service_set_compression(svc, PROXY_COMPRESSION_ENABLED, 1));
  /* A 64 MiB HTTP cache in front of the upstream; x-cache-status says what it did. The cache
   * stores what the upstream sent and each client gets its own coding of it. */
  CHECK(proxy_cache_new(64u << 20, &cache));
  CHECK(proxy_cache_set(cache, PROXY_CACHE_STATUS_HEADER, 1));
  CHECK(proxy_service_set_cache(svc, cache));
  CHECK(proxy_cache_free(cache));
  CHECK(proxy_service_set_callbacks(svc, &cbs));
  CHECK(proxy_server_add_service(server, svc));

  printf("%s proxying on port %u to %s\n", proxy_version(), (unsigned)port, cfg.upstream);
  fflush(stdout);
  CHECK(proxy_server_run(server, PROXY_RUN_SIGNALS));
  CHECK(proxy_server_free(server));
  return 0;
}
