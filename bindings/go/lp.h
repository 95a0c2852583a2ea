/* Declarations shared by the cgo preambles and lp.c (definitions live in lp.c only). */
#ifndef LIBPROXY_GO_LP_H
#define LIBPROXY_GO_LP_H

#include <stdint.h>
#include <proxy.h>

/* The //export trampolines of export.go. */
extern proxy_action goProxyEarlyRequestFilter(void *user, proxy_session *s);
extern proxy_action goProxyRequestFilter(void *user, proxy_session *s);
extern proxy_action goProxyUpstreamPeer(void *user, proxy_session *s);
extern proxy_action goProxyConnectedToUpstream(void *user, proxy_session *s);
extern proxy_action goProxyUpstreamRequestFilter(void *user, proxy_session *s);
extern proxy_action goProxyRequestBodyFilter(void *user, proxy_session *s);
extern proxy_action goProxyUpstreamResponseFilter(void *user, proxy_session *s);
extern proxy_action goProxyResponseFilter(void *user, proxy_session *s);
extern proxy_action goProxyUpstreamResponseBodyFilter(void *user, proxy_session *s);
extern proxy_action goProxyResponseBodyFilter(void *user, proxy_session *s);
extern proxy_action goProxyLogging(void *user, proxy_session *s);
extern proxy_action goProxyFailToConnect(void *user, proxy_session *s);
extern proxy_action goProxyErrorWhileProxy(void *user, proxy_session *s);
extern proxy_action goProxyFailToProxy(void *user, proxy_session *s);
extern proxy_action goProxyRequestEnd(void *user, proxy_session *s);
extern proxy_action goProxyRequestCacheFilter(void *user, proxy_session *s);
extern proxy_action goProxyCacheKeyCallback(void *user, proxy_session *s);
extern proxy_action goProxyCacheHitFilter(void *user, proxy_session *s);
extern proxy_action goProxyResponseCacheFilter(void *user, proxy_session *s);
extern void goProxyLog(void *user, uint32_t level, proxy_str message);
extern void goProxyHealth(void *user, proxy_str backend, uint32_t event);
extern void goProxyBackground(void *user, proxy_shutdown *shutdown);
extern proxy_action goProxyCertCallback(void *user, proxy_client_hello *hello);

/* Registers the trampolines whose bit is set in mask (bit n = PROXY_PHASE n); the rest stay NULL
 * and cost nothing. */
proxy_result lp_set_callbacks(proxy_service *svc, uintptr_t user, uint32_t mask);
/* Sets (user != 0) or removes the server's log callback. */
proxy_result lp_set_log(proxy_server *srv, uintptr_t user, uint32_t max_level);
proxy_result lp_header_get(proxy_session *s, uint32_t kind, const char *name, size_t nlen,
                           size_t index, proxy_str *out, size_t *count);
proxy_result lp_header_set(proxy_session *s, uint32_t kind, const char *name, size_t nlen,
                           const char *value, size_t vlen);
proxy_result lp_header_add(proxy_session *s, uint32_t kind, const char *name, size_t nlen,
                           const char *value, size_t vlen);
proxy_result lp_header_remove(proxy_session *s, uint32_t kind, const char *name, size_t nlen);
/* s NULL: only checks the peer (proxy_peer_check). */
proxy_result lp_set_peer(proxy_session *s, uint32_t flags, const char *addr, size_t alen,
                         const char *sni, size_t slen, uint32_t connect_ms, uint32_t total_ms,
                         uint32_t read_ms, uint32_t write_ms, uint32_t idle_ms, uint64_t pool_group,
                         const char *ca, size_t calen, const char *cert, size_t certlen,
                         const char *key, size_t keylen, uint32_t alpn, uint32_t max_h2_streams);
/* hbuf holds name0 value0 name1 value1 ... back to back; lens[2i] / lens[2i+1] their lengths. */
proxy_result lp_respond(proxy_session *s, uint32_t status, const char *hbuf, const size_t *lens,
                        size_t n, const uint8_t *body, size_t blen);
proxy_result lp_set_user(proxy_session *s, uintptr_t h);
/* Upstream groups: the Go health listener (user != 0) or none, and a Go background service. */
proxy_result lp_group_set_health(uint64_t group, uintptr_t user);
proxy_result lp_server_add_background(proxy_server *srv, const char *name, uintptr_t user);
uintptr_t lp_get_user(proxy_session *s);
/* Sets (user != 0) or removes the certificate callback of TLS settings. */
proxy_result lp_set_cert_callback(proxy_tls_settings *t, uintptr_t user);

/* L4 services (l4.go): the trampolines of l4_export.go, their registration, the peer, a pick. */
extern proxy_action goL4UpstreamPeer(void *user, proxy_l4_session *s);
extern proxy_action goL4Logging(void *user, proxy_l4_session *s);
proxy_result lp_set_l4_callbacks(proxy_service *svc, uintptr_t user, int logging);
proxy_result lp_l4_set_peer(proxy_l4_session *s, uint32_t flags, const char *addr, size_t alen,
                            const char *sni, size_t slen, uint32_t connect_ms, uint32_t total_ms,
                            uint32_t read_ms, uint32_t write_ms, uint32_t idle_ms, uint64_t pool_group,
                            const char *ca, size_t calen, const char *cert, size_t certlen,
                            const char *key, size_t keylen, uint32_t alpn, uint32_t max_h2_streams);
proxy_result lp_l4_pick(proxy_l4_session *s, uint64_t group, const char *key, size_t klen, int has_key);

#endif
