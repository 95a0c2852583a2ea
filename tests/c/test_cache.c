/* The HTTP cache from C: a proxy_cache with its settings (refused once attached), the four
 * cache callbacks (each deciding through proxy_session_set_cache / _set_cache_key), the status
 * in logging, purge by key, and usage. The origin's /cache/... answers with the fields each
 * request names in x-res-* fields (x-res-body its body). A failed CHECK in a callback exits the
 * program from its worker thread. */
#include "common.h"

#include <stdatomic.h>
#include <strings.h>

static char origin[64];
static atomic_uint last_status;

static int query_is(proxy_session *s, const char *q) {
  proxy_str v;
  return proxy_session_query(s, &v) == PROXY_OK && str_eq(v, q);
}

static proxy_action request_cache_filter(void *user, proxy_session *s) {
  (void)user;
  CHECK(proxy_session_set_cache(s, PROXY_CACHE_EXPIRE, 1) == PROXY_WRONG_PHASE);
  CHECK(proxy_session_set_cache(s, PROXY_CACHE_BYPASS, 2) == PROXY_INVALID_PARAMETER);
  if (query_is(s, "skip")) CHECK(proxy_session_set_cache(s, PROXY_CACHE_BYPASS, 1) == PROXY_OK);
  return PROXY_CONTINUE;
}

static proxy_action cache_key_callback(void *user, proxy_session *s) {
  (void)user;
  CHECK(proxy_session_set_cache_key(s, NULL, 3) == PROXY_NULL_PARAMETER);
  if (query_is(s, "shared")) CHECK(proxy_session_set_cache_key(s, (const uint8_t *)"k", 1) == PROXY_OK);
  return PROXY_CONTINUE;
}

static proxy_action cache_hit_filter(void *user, proxy_session *s) {
  (void)user;
  if (query_is(s, "expire")) CHECK(proxy_session_set_cache(s, PROXY_CACHE_EXPIRE, 1) == PROXY_OK);
  return PROXY_CONTINUE;
}

static proxy_action response_cache_filter(void *user, proxy_session *s) {
  uint32_t status = 0;
  (void)user;
  CHECK(proxy_session_response_status(s, &status) == PROXY_OK && status == 200);
  CHECK(proxy_session_set_cache(s, PROXY_CACHE_BYPASS, 1) == PROXY_WRONG_PHASE);
  if (query_is(s, "force")) {
    CHECK(proxy_session_set_cache(s, PROXY_CACHE_STORE, 1) == PROXY_OK);
    CHECK(proxy_session_set_cache(s, PROXY_CACHE_TTL, 60) == PROXY_OK);
  }
  return PROXY_CONTINUE;
}

static proxy_action upstream_peer(void *user, proxy_session *s) {
  (void)user;
  CHECK(proxy_session_set_cache_key(s, (const uint8_t *)"k", 1) == PROXY_WRONG_PHASE);
  return set_peer_str(s, origin) == PROXY_OK ? PROXY_CONTINUE : PROXY_ERROR;
}

static proxy_action logging(void *user, proxy_session *s) {
  uint32_t st = 99;
  (void)user;
  CHECK(proxy_session_cache_status(s, NULL) == PROXY_NULL_PARAMETER);
  CHECK(proxy_session_cache_status(s, &st) == PROXY_OK);
  atomic_store(&last_status, st);
  return PROXY_CONTINUE;
}

/* GET `path` with the x-res-* fields `fields` (each line ending in \r\n); the x-cache-status. */
static void get(uint16_t port, const char *path, const char *fields, char *buf, size_t cap, const char *want) {
  char req[1024];
  char line[64];
  snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: test\r\n%sConnection: close\r\n\r\n", path, fields);
  CHECK(http_raw(port, req, buf, cap) == 200);
  snprintf(line, sizeof line, "x-cache-status: %s\r\n", want);
  if (strstr(buf, line) == NULL) {
    fprintf(stderr, "%s: want %s in\n%s\n", path, want, buf);
    exit(1);
  }
}

#define MAX_AGE "x-res-cache-control: max-age=60\r\n"

int main(int argc, char **argv) {
  proxy_http_callbacks cbs = callbacks_init(NULL);
  proxy_server *srv = NULL;
  proxy_service *svc = NULL;
  proxy_cache *cache = NULL;
  uint16_t port = 0;
  uint64_t bytes = 0, objects = 0;
  static char buf[65536];
  static const char key[] = "http://test/cache/a";
  CHECK(argc > 1);
  snprintf(origin, sizeof origin, "%s", argv[1]);
  cbs.upstream_peer = upstream_peer;
  cbs.logging = logging;
  cbs.request_cache_filter = request_cache_filter;
  cbs.cache_key_callback = cache_key_callback;
  cbs.cache_hit_filter = cache_hit_filter;
  cbs.response_cache_filter = response_cache_filter;

  CHECK((proxy_features() & PROXY_FEATURE_CACHE) != 0);
  CHECK_RC(proxy_cache_new(1 << 20, NULL), PROXY_NULL_PARAMETER);
  CHECK_RC(proxy_cache_new(0, &cache), PROXY_INVALID_PARAMETER);
  OK(proxy_cache_new(1 << 20, &cache));
  CHECK_RC(proxy_cache_set(cache, 99, 1), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_cache_set(cache, PROXY_CACHE_STATUS_HEADER, 2), PROXY_INVALID_PARAMETER);
  CHECK_RC(proxy_cache_set(cache, PROXY_CACHE_MAX_OBJECT, 0), PROXY_INVALID_PARAMETER);
  OK(proxy_cache_set(cache, PROXY_CACHE_STATUS_HEADER, 1));
  OK(proxy_cache_set(cache, PROXY_CACHE_MAX_OBJECT, 1000));
  OK(proxy_cache_set(cache, PROXY_CACHE_LOCK_TIMEOUT_MS, 2000));
  OK(proxy_server_new(&srv));
  OK(proxy_service_new("cache", &svc));
  OK(proxy_service_add_tcp(svc, "127.0.0.1:0", &port));
  OK(proxy_service_set_callbacks(svc, &cbs));
  CHECK_RC(proxy_service_set_cache(svc, NULL), PROXY_NULL_PARAMETER);
  OK(proxy_service_set_cache(svc, cache));
  CHECK_RC(proxy_cache_set(cache, PROXY_CACHE_ALLOW_SET_COOKIE, 1), PROXY_WRONG_PHASE);
  OK(proxy_server_add_service(srv, svc));
  OK(proxy_server_start(srv));

  get(port, "/cache/a", MAX_AGE "x-res-body: one\r\n", buf, sizeof buf, "MISS");
  CHECK(atomic_load(&last_status) == PROXY_CACHE_STATUS_MISS);
  get(port, "/cache/a", MAX_AGE "x-res-body: two\r\n", buf, sizeof buf, "HIT");
  CHECK(strstr(buf, "\r\n\r\none") != NULL);
  CHECK(atomic_load(&last_status) == PROXY_CACHE_STATUS_HIT);
  get(port, "/cache/a?skip", MAX_AGE, buf, sizeof buf, "BYPASS");
  /* cache_hit_filter: a stored response treated as expired. */
  get(port, "/cache/e?expire", MAX_AGE, buf, sizeof buf, "MISS");
  get(port, "/cache/e?expire", MAX_AGE, buf, sizeof buf, "EXPIRED");
  /* cache_key_callback: one key for two paths. */
  get(port, "/cache/b?shared", MAX_AGE "x-res-body: shared\r\n", buf, sizeof buf, "MISS");
  get(port, "/cache/c?shared", "", buf, sizeof buf, "HIT");
  CHECK(strstr(buf, "\r\n\r\nshared") != NULL);
  /* response_cache_filter stores what the policy would not. */
  get(port, "/cache/d?force", "", buf, sizeof buf, "MISS");
  get(port, "/cache/d?force", "", buf, sizeof buf, "HIT");

  OK(proxy_cache_usage(cache, &bytes, &objects));
  CHECK(objects == 4 && bytes > 0);
  CHECK_RC(proxy_cache_purge(cache, NULL, 1), PROXY_NULL_PARAMETER);
  CHECK_RC(proxy_cache_purge(cache, (const uint8_t *)"nothing", 7), PROXY_NOT_FOUND);
  OK(proxy_cache_purge(cache, (const uint8_t *)key, sizeof key - 1));
  get(port, "/cache/a", MAX_AGE, buf, sizeof buf, "MISS");

  OK(proxy_server_shutdown(srv, 1000));
  OK(proxy_server_free(srv));
  OK(proxy_cache_free(cache));
  OK(proxy_cache_free(NULL));
  printf("cache ok\n");
  return 0;
}
