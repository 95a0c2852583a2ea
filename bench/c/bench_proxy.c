/* The proxy under test in bench/run.sh: the C example examples/c/minimal_proxy.c's proxy service
 * (upstream_peer sends every request to one peer), with 1 worker thread and no access-log line
 * (nginx and HAProxy run with access logs off too), plus two bench-only switches:
 *
 *   bench_proxy [--hooks] [--group N] LISTEN UPSTREAM
 *
 *   --group N  upstream_peer picks from an upstream group (round robin) of N backends, all of them
 *            UPSTREAM under names b0..bN-1 (one connection pool), instead of setting the peer:
 *            what choosing from a group costs per request (bench/groups.sh).
 *   --hooks  a C callback on every phase (the 14 others return PROXY_CONTINUE at once), like
 *            the "libproxy-hooked" path here and "all" in bench/ffi/run.sh.
 *   PROXY_TLS_LISTEN, PROXY_TLS_CERT, PROXY_TLS_KEY (environment, all three): also a TLS endpoint
 *            on PROXY_TLS_LISTEN, added with proxy_service_add_tls (ALPN h2,http/1.1), same service.
 *   BENCH_COMPRESS_LEVEL (bench/compression.sh): compression on at that level.
 *   BENCH_CACHE_MB (bench/cache.sh): an HTTP cache of that many MiB on the service.
 *   BENCH_OBSERVE=FLAGS (bench/metrics.sh): proxy_service_set_observe(FLAGS), an OR of
 *            PROXY_OBSERVE_* (7: metrics, request ids, error log), and with the metrics bit a
 *            metrics endpoint on BENCH_METRICS_LISTEN (default 127.0.0.1:0).
 *   BENCH_ACCESS_LOG=PATH (bench/metrics.sh): a combined access log line per request to PATH.
 *
 * The plaintext port answers HTTP/1.1 and h2c by prior knowledge. Stops on SIGINT / SIGTERM.
 *
 * SIGPIPE: the library blocks it in its own worker threads (tests/c/test_sigpipe.c), so this host
 * keeps the default action; BENCH_SIGPIPE=ignore ignores it anyway. */
#define _POSIX_C_SOURCE 200809L
#include <proxy.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char upstream[256];
static uint64_t group;

static proxy_action pass(void *user, proxy_session *s) {
  (void)user;
  (void)s;
  return PROXY_CONTINUE;
}

/* minimal_proxy.c's pick_upstream */
static proxy_action pick(void *user, proxy_session *s) {
  proxy_peer p;
  (void)user;
  memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.address = proxy_str_from_cstr(upstream);
  return proxy_session_set_peer(s, &p) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

static int fail(const char *what, proxy_result r) {
  fprintf(stderr, "bench_proxy: %s failed: %s (%u)\n", what, proxy_result_message(r), (unsigned)r);
  return 1;
}

static proxy_action pick_group(void *user, proxy_session *s) {
  proxy_str no_key = {NULL, 0};
  (void)user;
  return proxy_session_pick(s, group, no_key) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

/* --group N: the group of N names for one upstream. */
static proxy_result make_group(unsigned n) {
  proxy_peer p;
  char name[16];
  unsigned i;
  proxy_result r = proxy_group_new("bench", PROXY_GROUP_ROUND_ROBIN, &group);
  memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.address = proxy_str_from_cstr(upstream);
  for (i = 0; r == PROXY_OK && i < n; i++) {
    snprintf(name, sizeof name, "b%u", i);
    r = proxy_group_add_backend(group, name, &p, 1);
  }
  return r;
}

int main(int argc, char **argv) {
  proxy_server *srv = NULL;
  proxy_service *svc = NULL;
  proxy_http_callbacks c;
  proxy_result r;
  int hooks = 0, a = 1;
  unsigned group_size = 0;
  const char *tls_listen = getenv("PROXY_TLS_LISTEN"), *cert = getenv("PROXY_TLS_CERT"),
             *key = getenv("PROXY_TLS_KEY");
  if (getenv("BENCH_SIGPIPE") && strcmp(getenv("BENCH_SIGPIPE"), "ignore") == 0) signal(SIGPIPE, SIG_IGN);
  if (a < argc && strcmp(argv[a], "--hooks") == 0) {
    hooks = 1;
    a++;
  }
  if (a + 1 < argc && strcmp(argv[a], "--group") == 0) {
    group_size = (unsigned)atoi(argv[a + 1]);
    a += 2;
  }
  if (argc - a != 2) {
    fprintf(stderr, "usage: %s [--hooks] [--group N] LISTEN UPSTREAM\n", argv[0]);
    return 2;
  }
  snprintf(upstream, sizeof upstream, "%s", argv[a + 1]);
  memset(&c, 0, sizeof c);
  c.struct_size = sizeof c;
  c.upstream_peer = pick;
  if (group_size > 0) {
    if ((r = make_group(group_size)) != PROXY_OK) return fail("--group", r);
    c.upstream_peer = pick_group;
  }
  if (hooks) {
    c.early_request_filter = pass;
    c.request_filter = pass;
    c.connected_to_upstream = pass;
    c.upstream_request_filter = pass;
    c.request_body_filter = pass;
    c.upstream_response_filter = pass;
    c.response_filter = pass;
    c.upstream_response_body_filter = pass;
    c.response_body_filter = pass;
    c.logging = pass;
    c.fail_to_connect = pass;
    c.error_while_proxy = pass;
    c.fail_to_proxy = pass;
    c.request_end = pass;
  }
  if ((r = proxy_server_new(&srv)) != PROXY_OK) return fail("proxy_server_new", r);
  if ((r = proxy_service_new("bench", &svc)) != PROXY_OK) return fail("proxy_service_new", r);
  if ((r = proxy_service_add_tcp(svc, argv[a], NULL)) != PROXY_OK) return fail("proxy_service_add_tcp", r);
  if (tls_listen && *tls_listen && cert && key) {
    proxy_tls_settings *tls = NULL;
    if ((r = proxy_tls_settings_new(&tls)) != PROXY_OK) return fail("proxy_tls_settings_new", r);
    if ((r = proxy_tls_settings_set_cert_files(tls, cert, key)) != PROXY_OK ||
        (r = proxy_service_add_tls(svc, tls_listen, tls, NULL)) != PROXY_OK) {
      proxy_str m = {0};
      proxy_tls_settings_last_error(tls, &m);
      fprintf(stderr, "bench_proxy: TLS: %.*s\n", (int)m.len, m.ptr);
      return fail("TLS endpoint", r);
    }
    proxy_tls_settings_free(tls);
  }
  if (getenv("BENCH_COMPRESS_LEVEL")) {
    /* bench/compression.sh: compression on, every algorithm at this level (clamped to gzip's and
     * brotli's ranges); the client's Accept-Encoding picks the one measured. */
    uint64_t level = strtoull(getenv("BENCH_COMPRESS_LEVEL"), NULL, 10);
    if ((r = proxy_service_set_compression(svc, PROXY_COMPRESSION_ENABLED, 1)) != PROXY_OK ||
        (r = proxy_service_set_compression(svc, PROXY_COMPRESSION_LEVEL_GZIP, level > 9 ? 9 : level)) != PROXY_OK ||
        (r = proxy_service_set_compression(svc, PROXY_COMPRESSION_LEVEL_BROTLI, level > 11 ? 11 : level)) != PROXY_OK ||
        (r = proxy_service_set_compression(svc, PROXY_COMPRESSION_LEVEL_ZSTD, level)) != PROXY_OK)
      return fail("proxy_service_set_compression", r);
  }
  if (getenv("BENCH_CACHE_MB")) {
    proxy_cache *cache = NULL;
    uint64_t mb = strtoull(getenv("BENCH_CACHE_MB"), NULL, 10);
    if ((r = proxy_cache_new(mb << 20, &cache)) != PROXY_OK ||
        (r = proxy_service_set_cache(svc, cache)) != PROXY_OK)
      return fail("proxy_cache_new / proxy_service_set_cache", r);
    proxy_cache_free(cache);
  }
  if (getenv("BENCH_OBSERVE")) {
    const char *m = getenv("BENCH_METRICS_LISTEN");
    uint32_t flags = (uint32_t)strtoul(getenv("BENCH_OBSERVE"), NULL, 10);
    if ((r = proxy_service_set_observe(svc, flags)) != PROXY_OK) return fail("proxy_service_set_observe", r);
    if ((flags & PROXY_OBSERVE_METRICS) && (r = proxy_server_add_metrics(srv, m ? m : "127.0.0.1:0", NULL)) != PROXY_OK)
      return fail("proxy_server_add_metrics", r);
  }
  if (getenv("BENCH_ACCESS_LOG") &&
      (r = proxy_service_set_access_log(svc, getenv("BENCH_ACCESS_LOG"), "combined")) != PROXY_OK)
    return fail("proxy_service_set_access_log", r);
  if ((r = proxy_service_set_threads(svc, 1)) != PROXY_OK) return fail("proxy_service_set_threads", r);
  if ((r = proxy_service_set_callbacks(svc, &c)) != PROXY_OK) return fail("proxy_service_set_callbacks", r);
  if ((r = proxy_server_add_service(srv, svc)) != PROXY_OK) return fail("proxy_server_add_service", r);
  if ((r = proxy_server_run(srv, PROXY_RUN_SIGNALS)) != PROXY_OK) return fail("proxy_server_run", r);
  return proxy_server_free(srv) == PROXY_OK ? 0 : 1;
}
