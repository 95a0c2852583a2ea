/* C half of the Go binding: wrappers so that Go never builds a C struct holding a Go pointer
 * (cgo pointer rules), and the table pointing libproxy at the //export trampolines of export.go.
 * `user` pointers are cgo.Handle values, never Go pointers. */
#include "lp.h"

#include <stdlib.h>
#include <string.h>

#define LP_BIT(p) (1u << (p))

static proxy_action lp_request_end_if_state(void *user, proxy_session *s) {
	return proxy_session_get_user(s) ? goProxyRequestEnd(user, s) : PROXY_CONTINUE;
}

// Registers the trampolines whose bit is set in mask (bit n = PROXY_PHASE n); the rest stay NULL
// and cost nothing.
proxy_result lp_set_callbacks(proxy_service *svc, uintptr_t user, uint32_t mask) {
	proxy_http_callbacks c;
	memset(&c, 0, sizeof c);
	c.struct_size = sizeof c;
	c.user = (void *)user;
	if (mask & LP_BIT(PROXY_PHASE_EARLY_REQUEST_FILTER)) c.early_request_filter = goProxyEarlyRequestFilter;
	if (mask & LP_BIT(PROXY_PHASE_REQUEST_FILTER)) c.request_filter = goProxyRequestFilter;
	if (mask & LP_BIT(PROXY_PHASE_UPSTREAM_PEER)) c.upstream_peer = goProxyUpstreamPeer;
	if (mask & LP_BIT(PROXY_PHASE_CONNECTED_TO_UPSTREAM)) c.connected_to_upstream = goProxyConnectedToUpstream;
	if (mask & LP_BIT(PROXY_PHASE_UPSTREAM_REQUEST_FILTER)) c.upstream_request_filter = goProxyUpstreamRequestFilter;
	if (mask & LP_BIT(PROXY_PHASE_REQUEST_BODY_FILTER)) c.request_body_filter = goProxyRequestBodyFilter;
	if (mask & LP_BIT(PROXY_PHASE_UPSTREAM_RESPONSE_FILTER)) c.upstream_response_filter = goProxyUpstreamResponseFilter;
	if (mask & LP_BIT(PROXY_PHASE_RESPONSE_FILTER)) c.response_filter = goProxyResponseFilter;
	if (mask & LP_BIT(PROXY_PHASE_UPSTREAM_RESPONSE_BODY_FILTER)) c.upstream_response_body_filter = goProxyUpstreamResponseBodyFilter;
	if (mask & LP_BIT(PROXY_PHASE_RESPONSE_BODY_FILTER)) c.response_body_filter = goProxyResponseBodyFilter;
	if (mask & LP_BIT(PROXY_PHASE_LOGGING)) c.logging = goProxyLogging;
	if (mask & LP_BIT(PROXY_PHASE_FAIL_TO_CONNECT)) c.fail_to_connect = goProxyFailToConnect;
	if (mask & LP_BIT(PROXY_PHASE_ERROR_WHILE_PROXY)) c.error_while_proxy = goProxyErrorWhileProxy;
	if (mask & LP_BIT(PROXY_PHASE_FAIL_TO_PROXY)) c.fail_to_proxy = goProxyFailToProxy;
	/* Without a RequestEnd hook the binding still needs request_end to release what it keeps per
	 * request (Session.Context, SetUser); lp_request_end_if_state crosses into Go only for the
	 * requests that have such state, a C call for the others. */
	c.request_end = (mask & LP_BIT(PROXY_PHASE_REQUEST_END)) ? goProxyRequestEnd : lp_request_end_if_state;
	if (mask & LP_BIT(PROXY_PHASE_REQUEST_CACHE_FILTER)) c.request_cache_filter = goProxyRequestCacheFilter;
	if (mask & LP_BIT(PROXY_PHASE_CACHE_KEY_CALLBACK)) c.cache_key_callback = goProxyCacheKeyCallback;
	if (mask & LP_BIT(PROXY_PHASE_CACHE_HIT_FILTER)) c.cache_hit_filter = goProxyCacheHitFilter;
	if (mask & LP_BIT(PROXY_PHASE_RESPONSE_CACHE_FILTER)) c.response_cache_filter = goProxyResponseCacheFilter;
	return proxy_service_set_callbacks(svc, &c);
}

proxy_result lp_set_log(proxy_server *srv, uintptr_t user, uint32_t max_level) {
	return proxy_server_set_log(srv, user ? goProxyLog : NULL, (void *)user, max_level);
}

static proxy_str lp_str(const char *p, size_t n) {
	proxy_str s;
	s.ptr = n ? p : NULL;
	s.len = n;
	return s;
}

proxy_result lp_header_get(proxy_session *s, uint32_t kind, const char *name, size_t nlen,
                                  size_t index, proxy_str *out, size_t *count) {
	return proxy_session_header_get(s, kind, lp_str(name, nlen), index, out, count);
}

proxy_result lp_header_set(proxy_session *s, uint32_t kind, const char *name, size_t nlen,
                                  const char *value, size_t vlen) {
	return proxy_session_header_set(s, kind, lp_str(name, nlen), lp_str(value, vlen));
}

proxy_result lp_header_add(proxy_session *s, uint32_t kind, const char *name, size_t nlen,
                                  const char *value, size_t vlen) {
	return proxy_session_header_add(s, kind, lp_str(name, nlen), lp_str(value, vlen));
}

proxy_result lp_header_remove(proxy_session *s, uint32_t kind, const char *name, size_t nlen) {
	return proxy_session_header_remove(s, kind, lp_str(name, nlen));
}

/* The proxy_peer the Go Peer describes (its strings borrowed for the call). */
static proxy_peer lp_peer(uint32_t flags, const char *addr, size_t alen, const char *sni, size_t slen,
                          uint32_t connect_ms, uint32_t total_ms, uint32_t read_ms, uint32_t write_ms,
                          uint32_t idle_ms, uint64_t pool_group, const char *ca, size_t calen,
                          const char *cert, size_t certlen, const char *key, size_t keylen,
                          uint32_t alpn, uint32_t max_h2_streams) {
	proxy_peer p;
	memset(&p, 0, sizeof p);
	p.struct_size = sizeof p;
	p.flags = flags;
	p.address = lp_str(addr, alen);
	p.sni = lp_str(sni, slen);
	p.connect_timeout_ms = connect_ms;
	p.total_connection_timeout_ms = total_ms;
	p.read_timeout_ms = read_ms;
	p.write_timeout_ms = write_ms;
	p.idle_timeout_ms = idle_ms;
	p.pool_group = pool_group;
	p.ca_file = lp_str(ca, calen);
	p.client_cert = lp_str(cert, certlen);
	p.client_key = lp_str(key, keylen);
	p.alpn = alpn;
	p.max_h2_streams = max_h2_streams;
	return p;
}

#define LP_PEER_ARGS                                                                               \
	flags, addr, alen, sni, slen, connect_ms, total_ms, read_ms, write_ms, idle_ms, pool_group, ca, \
	    calen, cert, certlen, key, keylen, alpn, max_h2_streams

proxy_result lp_set_peer(proxy_session *s, uint32_t flags, const char *addr, size_t alen,
                                const char *sni, size_t slen, uint32_t connect_ms, uint32_t total_ms,
                                uint32_t read_ms, uint32_t write_ms, uint32_t idle_ms,
                                uint64_t pool_group, const char *ca, size_t calen,
                                const char *cert, size_t certlen, const char *key, size_t keylen,
                                uint32_t alpn, uint32_t max_h2_streams) {
	proxy_peer p = lp_peer(LP_PEER_ARGS);
	return s ? proxy_session_set_peer(s, &p) : proxy_peer_check(&p);
}

proxy_result lp_l4_set_peer(proxy_l4_session *s, uint32_t flags, const char *addr, size_t alen,
                            const char *sni, size_t slen, uint32_t connect_ms, uint32_t total_ms,
                            uint32_t read_ms, uint32_t write_ms, uint32_t idle_ms, uint64_t pool_group,
                            const char *ca, size_t calen, const char *cert, size_t certlen,
                            const char *key, size_t keylen, uint32_t alpn, uint32_t max_h2_streams) {
	proxy_peer p = lp_peer(LP_PEER_ARGS);
	return proxy_l4_session_set_peer(s, &p);
}

/* L4 services: upstream_peer always, logging when the Go handler has it. */
proxy_result lp_set_l4_callbacks(proxy_service *svc, uintptr_t user, int logging) {
	proxy_l4_callbacks c;
	memset(&c, 0, sizeof c);
	c.struct_size = sizeof c;
	c.user = (void *)user;
	c.upstream_peer = goL4UpstreamPeer;
	if (logging) c.logging = goL4Logging;
	return proxy_service_set_l4_callbacks(svc, &c);
}

proxy_result lp_l4_pick(proxy_l4_session *s, uint64_t group, const char *key, size_t klen, int has_key) {
	proxy_str k = lp_str(key, klen);
	if (!has_key) k.ptr = NULL;
	return proxy_l4_session_pick(s, group, k);
}

// hbuf holds name0 value0 name1 value1 ... back to back; lens[2i] / lens[2i+1] their lengths.
proxy_result lp_respond(proxy_session *s, uint32_t status, const char *hbuf, const size_t *lens,
                               size_t n, const uint8_t *body, size_t blen) {
	proxy_header stackh[16];
	proxy_header *h = stackh;
	proxy_result r;
	size_t i;
	if (n > 16) {
		h = (proxy_header *)malloc(n * sizeof *h);
		if (!h) return PROXY_IO;
	}
	for (i = 0; i < n; i++) {
		h[i].name = lp_str(hbuf, lens[2 * i]);
		hbuf += lens[2 * i];
		h[i].value = lp_str(hbuf, lens[2 * i + 1]);
		hbuf += lens[2 * i + 1];
	}
	r = proxy_session_respond(s, status, n ? h : NULL, n, blen ? body : NULL, blen);
	if (h != stackh) free(h);
	return r;
}

proxy_result lp_set_user(proxy_session *s, uintptr_t h) { return proxy_session_set_user(s, (void *)h); }
uintptr_t lp_get_user(proxy_session *s) { return (uintptr_t)proxy_session_get_user(s); }

proxy_result lp_group_set_health(uint64_t group, uintptr_t user) {
	return proxy_group_set_health_callback(group, user ? goProxyHealth : NULL, (void *)user);
}

/* cgo exports take no const: the signal is only passed back to proxy_shutdown_wait. */
static void lp_background(void *user, const proxy_shutdown *shutdown) {
	goProxyBackground(user, (proxy_shutdown *)shutdown);
}

proxy_result lp_server_add_background(proxy_server *srv, const char *name, uintptr_t user) {
	return proxy_server_add_background(srv, name, lp_background, (void *)user);
}

proxy_result lp_set_cert_callback(proxy_tls_settings *t, uintptr_t user) {
	return proxy_tls_settings_set_cert_callback(t, user ? goProxyCertCallback : NULL, (void *)user);
}
