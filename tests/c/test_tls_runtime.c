/* TLS facts in hooks, certificates replaced at runtime and the certificate callback, through the
 * C ABI, with curl as the client. argv[2] is the certificate directory of tests/c/test_tls.c
 * (ca.pem; server.pem/.key for localhost, 127.0.0.1, origin.test; other.pem/.key for other.test;
 * client.pem/.key, CN c-test-client).
 *  - facts: a hook answers with SNI, ALPN, version, cipher and the client certificate's subject,
 *    SAN, serial, expiry and DER, over HTTP/1.1 and HTTP/2; errors on a plaintext endpoint;
 *  - replacement: proxy_service_tls_certs taken before the service is added, then the default
 *    certificate replaced while the server runs (curl verifies the name, so the new one is served);
 *  - callback: other.test chosen at once, origin.test decided by another thread after PENDING
 *    (the endpoint's own certificate covers neither), late.test left pending past the handshake
 *    timeout, refuse.test refused; resume rules. */
#include "common.h"

static char dir[512];

static void path_of(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

static const char *run(const char *cmd) {
  static char out[16384];
  size_t n = 0, r;
  FILE *p = popen(cmd, "r");
  CHECK(p != NULL);
  while (n + 1 < sizeof out && (r = fread(out + n, 1, sizeof out - 1 - n, p)) > 0) n += r;
  out[n] = 0;
  pclose(p);
  return out;
}

static void check_contains(const char *out, const char *want, const char *what) {
  if (strstr(out, want) == NULL) {
    fprintf(stderr, "%s: want %s in:\n%s\n", what, want, out);
    exit(1);
  }
}

/* Appends "name=value\n" for fact `f` (index `i`), or "name=-\n" when NOT_FOUND. */
static int put_fact(proxy_session *s, char *buf, size_t cap, int n, const char *name, uint32_t f, size_t i) {
  proxy_bytes v = {NULL, 0};
  proxy_result r = proxy_session_tls(s, f, i, &v);
  if (r == PROXY_NOT_FOUND) return n + snprintf(buf + n, cap - (size_t)n, "%s=-\n", name);
  if (r != PROXY_OK) return -1;
  if (f == PROXY_TLS_FACT_CLIENT_CERT) /* DER: its length, and that it is a SEQUENCE */
    return n + snprintf(buf + n, cap - (size_t)n, "%s=%u bytes, tag %02x\n", name, (unsigned)v.len, v.ptr[0]);
  return n + snprintf(buf + n, cap - (size_t)n, "%s=%.*s\n", name, (int)v.len, (const char *)v.ptr);
}

static proxy_action facts_filter(void *user, proxy_session *s) {
  char body[4096];
  int n = 0;
  int64_t not_after = 0;
  proxy_bytes v;
  (void)user;
  n = put_fact(s, body, sizeof body, n, "sni", PROXY_TLS_FACT_SNI, 0);
  if (n >= 0) n = put_fact(s, body, sizeof body, n, "alpn", PROXY_TLS_FACT_ALPN, 0);
  if (n >= 0) n = put_fact(s, body, sizeof body, n, "version", PROXY_TLS_FACT_VERSION, 0);
  if (n >= 0) n = put_fact(s, body, sizeof body, n, "cipher", PROXY_TLS_FACT_CIPHER, 0);
  if (n >= 0) n = put_fact(s, body, sizeof body, n, "subject", PROXY_TLS_FACT_CLIENT_SUBJECT, 0);
  if (n >= 0) n = put_fact(s, body, sizeof body, n, "issuer", PROXY_TLS_FACT_CLIENT_ISSUER, 0);
  if (n >= 0) n = put_fact(s, body, sizeof body, n, "serial", PROXY_TLS_FACT_CLIENT_SERIAL, 0);
  if (n >= 0) n = put_fact(s, body, sizeof body, n, "san0", PROXY_TLS_FACT_CLIENT_SAN, 0);
  if (n >= 0) n = put_fact(s, body, sizeof body, n, "san1", PROXY_TLS_FACT_CLIENT_SAN, 1);
  if (n >= 0) n = put_fact(s, body, sizeof body, n, "der", PROXY_TLS_FACT_CLIENT_CERT, 0);
  if (n < 0) return PROXY_ERROR;
  if (proxy_session_tls_client_not_after(s, &not_after) == PROXY_OK)
    n += snprintf(body + n, sizeof body - (size_t)n, "not_after_future=%d\n", not_after > (int64_t)time(NULL));
  /* Argument checks: an unknown fact, an index where none applies. */
  if (proxy_session_tls(s, 99, 0, &v) != PROXY_INVALID_PARAMETER) return PROXY_ERROR;
  if (proxy_session_tls(s, PROXY_TLS_FACT_SNI, 1, &v) != PROXY_INVALID_PARAMETER) return PROXY_ERROR;
  if (proxy_session_tls(s, PROXY_TLS_FACT_SNI, 0, NULL) != PROXY_NULL_PARAMETER) return PROXY_ERROR;
  if (proxy_session_respond(s, 200, NULL, 0, (const uint8_t *)body, (size_t)n) != PROXY_OK) return PROXY_ERROR;
  return PROXY_RESPONDED;
}

/* ---- the certificate callback ---- */
static proxy_tls_cert *cert_other, *cert_server;
static pthread_t decider;
static volatile int decider_started;
static uint64_t pending_id;
/* late.test: left pending until the handshake timeout passes. */
static proxy_client_hello *late_hello;
static uint64_t late_id;

static void *decide_later(void *arg) {
  proxy_client_hello *h = (proxy_client_hello *)arg;
  proxy_str name;
  /* The hello stays readable while pending, from the thread that resumes it. */
  CHECK(proxy_client_hello_server_name(h, &name) == PROXY_OK && str_eq(name, "origin.test"));
  OK(proxy_client_hello_set_cert(h, cert_server));
  CHECK_RC(proxy_client_hello_resume(pending_id, PROXY_PENDING), PROXY_INVALID_PARAMETER);
  OK(proxy_client_hello_resume(pending_id, PROXY_CONTINUE));
  CHECK_RC(proxy_client_hello_resume(pending_id, PROXY_CONTINUE), PROXY_ALREADY);
  return NULL;
}

static proxy_action choose_cert(void *user, proxy_client_hello *h) {
  proxy_str name, alpn;
  uint16_t scheme = 0;
  (void)user;
  if (proxy_client_hello_server_name(h, &name) != PROXY_OK) return PROXY_ERROR;
  /* curl offers h2 first, then http/1.1, and a list of signature schemes. */
  if (proxy_client_hello_alpn(h, 0, &alpn) != PROXY_OK || !str_eq(alpn, "h2")) return PROXY_ERROR;
  if (proxy_client_hello_alpn(h, 9, &alpn) != PROXY_NOT_FOUND) return PROXY_ERROR;
  if (proxy_client_hello_signature_scheme(h, 0, &scheme) != PROXY_OK || scheme == 0) return PROXY_ERROR;
  if (str_eq(name, "other.test")) {
    if (proxy_client_hello_set_cert(h, cert_other) != PROXY_OK) return PROXY_ERROR;
    return PROXY_CONTINUE;
  }
  if (str_eq(name, "origin.test")) {
    if (proxy_client_hello_id(h, &pending_id) != PROXY_OK) return PROXY_ERROR;
    if (pthread_create(&decider, NULL, decide_later, h) != 0) return PROXY_ERROR;
    decider_started = 1;
    return PROXY_PENDING;
  }
  if (str_eq(name, "late.test")) {
    if (proxy_client_hello_id(h, &late_id) != PROXY_OK) return PROXY_ERROR;
    late_hello = h;
    return PROXY_PENDING;
  }
  return PROXY_ERROR;
}

/* curl over TLS to `name` on `port` (resolved to 127.0.0.1), verifying against our CA. */
static const char *curl_tls(const char *flags, const char *name, uint16_t port, const char *path) {
  char cmd[2048], ca[600];
  path_of(ca, sizeof ca, "ca.pem");
  snprintf(cmd, sizeof cmd,
           "curl -sS --max-time 10 %s --cacert %s --cert %s/client.pem --key %s/client.key "
           "--resolve %s:%u:127.0.0.1 -w 'code=%%{http_code}' https://%s:%u%s 2>&1",
           flags, ca, dir, dir, name, (unsigned)port, name, (unsigned)port, path);
  return run(cmd);
}

int main(int argc, char **argv) {
  proxy_server *server = NULL;
  proxy_service *svc = NULL;
  proxy_tls_settings *t = NULL, *t2 = NULL, *cb = NULL;
  proxy_tls_certs *certs = NULL, *none = NULL;
  proxy_http_callbacks cbs;
  uint16_t plain_port = 0, tls_port = 0, cb_port = 0;
  char cert[600], key[600], ocert[600], okey[600], ca[600], buf[4096];
  const char *out;
  CHECK(argc > 2);
  snprintf(dir, sizeof dir, "%s", argv[2]);
  path_of(cert, sizeof cert, "server.pem");
  path_of(key, sizeof key, "server.key");
  path_of(ocert, sizeof ocert, "other.pem");
  path_of(okey, sizeof okey, "other.key");
  path_of(ca, sizeof ca, "ca.pem");
  CHECK((proxy_features() & (PROXY_FEATURE_TLS_FACTS | PROXY_FEATURE_CERT_RELOAD)) ==
        (PROXY_FEATURE_TLS_FACTS | PROXY_FEATURE_CERT_RELOAD));

  OK(proxy_tls_cert_new_files(cert, key, &cert_server));
  OK(proxy_tls_cert_new_files(ocert, okey, &cert_other));
  CHECK_RC(proxy_tls_cert_new_files(cert, okey, &cert_other), PROXY_TLS_INVALID);
  CHECK_RC(proxy_tls_cert_new_pem((const uint8_t *)"x", 1, (const uint8_t *)"y", 1, NULL), PROXY_NULL_PARAMETER);

  /* A TLS endpoint with optional mTLS, and one whose certificates a callback chooses (its own
   * default, other.test, is what CONTINUE without a choice would serve). */
  OK(proxy_tls_settings_new(&t));
  OK(proxy_tls_settings_set_cert_files(t, cert, key));
  OK(proxy_tls_settings_set_client_auth_file(t, ca, PROXY_TLS_CLIENT_AUTH_OPTIONAL));
  OK(proxy_tls_settings_new(&cb));
  OK(proxy_tls_settings_set_cert_files(cb, ocert, okey));
  OK(proxy_tls_settings_set_cert_callback(cb, choose_cert, NULL));
  OK(proxy_tls_settings_set_handshake_timeout(cb, 500));
  cbs = callbacks_init(NULL);
  cbs.request_filter = facts_filter;
  OK(proxy_server_new(&server));
  OK(proxy_service_new("tls-runtime", &svc));
  OK(proxy_service_add_tcp(svc, "127.0.0.1:0", &plain_port));
  OK(proxy_service_add_tls(svc, "127.0.0.1:0", t, &tls_port));
  OK(proxy_service_add_tls(svc, "127.0.0.1:0", cb, &cb_port));
  OK(proxy_service_set_callbacks(svc, &cbs));
  CHECK_RC(proxy_service_tls_certs(svc, plain_port, &none), PROXY_NOT_FOUND);
  CHECK(none == NULL);
  OK(proxy_service_tls_certs(svc, tls_port, &certs));
  OK(proxy_server_add_service(server, svc));
  OK(proxy_server_start(server));

  /* Facts over HTTP/1.1 with the client certificate. */
  out = curl_tls("--http1.1", "localhost", tls_port, "/");
  check_contains(out, "sni=localhost\nalpn=http/1.1\nversion=TLSv1.3\ncipher=TLS13_", "h1 facts");
  check_contains(out, "subject=CN=c-test-client\nissuer=CN=libproxy C test CA\nserial=", "h1 client cert");
  check_contains(out, "san0=DNS:c-test-client\nsan1=-\nder=", "h1 SANs");
  check_contains(out, "tag 30\nnot_after_future=1\ncode=200", "h1 DER and expiry");
  /* HTTP/2 over TLS 1.2, the same facts. */
  out = curl_tls("--http2 --tls-max 1.2", "localhost", tls_port, "/");
  check_contains(out, "sni=localhost\nalpn=h2\nversion=TLSv1.2\ncipher=TLS_ECDHE_", "h2 facts");
  check_contains(out, "subject=CN=c-test-client\n", "h2 client cert");
  /* Plaintext: every fact is NOT_FOUND. */
  CHECK(http_get(plain_port, "/", buf, sizeof buf) == 200);
  check_contains(buf, "sni=-\nalpn=-\nversion=-\ncipher=-\nsubject=-\n", "plaintext");

  /* Replace the default certificate while running: other.test's is served from then on, and the
   * old name no longer verifies. A settings object without a certificate changes nothing. */
  OK(proxy_tls_settings_new(&t2));
  CHECK_RC(proxy_tls_certs_replace(certs, t2), PROXY_TLS_INVALID);
  check_contains(curl_tls("", "localhost", tls_port, "/"), "code=200", "still the old certificate");
  OK(proxy_tls_settings_set_cert_files(t2, ocert, okey));
  OK(proxy_tls_certs_replace(certs, t2));
  check_contains(curl_tls("", "other.test", tls_port, "/"), "sni=other.test\n", "replaced certificate");
  check_contains(curl_tls("", "localhost", tls_port, "/"), "code=000", "old name after the swap");
  OK(proxy_tls_certs_free(certs));
  OK(proxy_tls_certs_free(NULL));

  /* The callback: at once (other.test), PENDING then resumed from a thread (origin.test). */
  check_contains(curl_tls("--http2", "other.test", cb_port, "/"), "sni=other.test\nalpn=h2\n", "sync choice");
  check_contains(curl_tls("--http2", "origin.test", cb_port, "/"), "sni=origin.test\nalpn=h2\n", "pending choice");
  CHECK(decider_started);
  pthread_join(decider, NULL);
  /* The handshake is over: its id is gone. Unknown ids too. */
  CHECK_RC(proxy_client_hello_resume(pending_id, PROXY_CONTINUE), PROXY_GONE);
  CHECK_RC(proxy_client_hello_resume(123456789, PROXY_ERROR), PROXY_GONE);
  /* Never resumed: the handshake times out; the hello stays readable (GONE) until the resume,
   * which answers GONE and releases it; the id is unknown after that. */
  check_contains(curl_tls("--http2", "late.test", cb_port, "/"), "code=000", "timed out");
  CHECK(late_hello != NULL);
  {
    proxy_str name;
    int i;
    /* The timeout ends the wait on the worker a moment after curl saw the close. */
    for (i = 0; i < 200 && proxy_client_hello_server_name(late_hello, &name) == PROXY_OK; i++) sleep_ms(10);
    CHECK_RC(proxy_client_hello_server_name(late_hello, &name), PROXY_GONE);
  }
  CHECK_RC(proxy_client_hello_resume(late_id, PROXY_CONTINUE), PROXY_GONE);
  CHECK_RC(proxy_client_hello_resume(late_id, PROXY_CONTINUE), PROXY_GONE);
  /* Refused by the callback: no TLS session. */
  check_contains(curl_tls("--http2", "refuse.test", cb_port, "/"), "code=000", "refused");

  OK(proxy_server_free(server));
  proxy_tls_settings_free(t);
  proxy_tls_settings_free(t2);
  proxy_tls_settings_free(cb);
  OK(proxy_tls_cert_free(cert_server));
  OK(proxy_tls_cert_free(cert_other));
  OK(proxy_tls_cert_free(NULL));
  puts("test_tls_runtime ok");
  return 0;
}
