/* Fail closed: garbage actions, 0, RESPONDED without a response, no peer, ERROR after the
 * response head; header injection refused. */
#include "common.h"

static char origin[64];
static volatile int mode;
static volatile int injection_ok;

static proxy_action request_filter(void *user, proxy_session *s) {
  proxy_header h[2];
  (void)user;
  switch (mode) {
    case 0: return 0;          /* what ctypes returns for a Python exception */
    case 1: return 42;         /* garbage */
    case 2: return -1;
    case 3: return PROXY_RESPONDED; /* without proxy_session_respond */
    case 4: return PROXY_ERROR;
    case 5: {
      /* Injection attempts are refused and change nothing. */
      int ok = 1;
      ok &= proxy_session_header_set(s, PROXY_HEADERS_REQUEST, proxy_str_from_cstr("x-a"),
                                     proxy_str_from_cstr("v\r\nx-injected: 1")) == PROXY_HEADER_INVALID;
      ok &= proxy_session_header_add(s, PROXY_HEADERS_REQUEST, proxy_str_from_cstr("x-a\nb"),
                                     proxy_str_from_cstr("v")) == PROXY_HEADER_INVALID;
      ok &= proxy_session_header_add(s, PROXY_HEADERS_REQUEST, proxy_str_from_cstr("x-a"),
                                     proxy_str_from_cstr("v\n")) == PROXY_HEADER_INVALID;
      {
        proxy_str nul;
        nul.ptr = "a\0b";
        nul.len = 3;
        ok &= proxy_session_header_add(s, PROXY_HEADERS_REQUEST, proxy_str_from_cstr("x-a"), nul) ==
              PROXY_HEADER_INVALID;
      }
      ok &= proxy_session_header_set(s, PROXY_HEADERS_REQUEST, proxy_str_from_cstr(""),
                                     proxy_str_from_cstr("v")) == PROXY_HEADER_INVALID;
      ok &= proxy_session_header_set(s, PROXY_HEADERS_REQUEST, proxy_str_from_cstr("content-length"),
                                     proxy_str_from_cstr("5")) == PROXY_HEADER_INVALID;
      ok &= proxy_session_header_set(s, PROXY_HEADERS_REQUEST, proxy_str_from_cstr("Transfer-Encoding"),
                                     proxy_str_from_cstr("chunked")) == PROXY_HEADER_INVALID;
      ok &= proxy_session_header_set(s, 99, proxy_str_from_cstr("x"), proxy_str_from_cstr("v")) ==
            PROXY_INVALID_PARAMETER;
      /* respond with one bad header stores nothing */
      h[0].name = proxy_str_from_cstr("x-good");
      h[0].value = proxy_str_from_cstr("1");
      h[1].name = proxy_str_from_cstr("x-bad");
      h[1].value = proxy_str_from_cstr("1\r\n\r\nHTTP/1.1 200 OK");
      ok &= proxy_session_respond(s, 200, h, 2, NULL, 0) == PROXY_HEADER_INVALID;
      ok &= proxy_session_respond(s, 99, h, 1, NULL, 0) == PROXY_INVALID_PARAMETER;
      ok &= proxy_session_respond(s, 200, NULL, 1, NULL, 0) == PROXY_NULL_PARAMETER;
      injection_ok = ok;
      return PROXY_CONTINUE;
    }
    default: return PROXY_CONTINUE;
  }
}

static proxy_action upstream_peer(void *user, proxy_session *s) {
  (void)user;
  if (mode == 6) return PROXY_CONTINUE; /* no peer chosen */
  if (set_peer_str(s, origin) != PROXY_OK) return PROXY_ERROR;
  return PROXY_CONTINUE;
}

static proxy_action response_body_filter(void *user, proxy_session *s) {
  (void)user;
  (void)s;
  return mode == 7 ? 1234 : PROXY_CONTINUE; /* after the head went out: connection cut */
}

int main(int argc, char **argv) {
  proxy_http_callbacks cbs;
  proxy_server *srv;
  uint16_t port;
  char buf[8192];
  int m;
  CHECK(argc > 1);
  snprintf(origin, sizeof origin, "%s", argv[1]);
  cbs = callbacks_init(NULL);
  cbs.request_filter = request_filter;
  cbs.upstream_peer = upstream_peer;
  cbs.response_body_filter = response_body_filter;
  srv = start_proxy(&cbs, 0, &port);

  for (m = 0; m <= 4; m++) {
    mode = m;
    CHECK(http_get(port, "/echo", buf, sizeof buf) == 500);
  }
  mode = 5;
  CHECK(http_get(port, "/echo", buf, sizeof buf) == 200);
  CHECK(injection_ok);
  CHECK(strstr(buf, "x-injected") == NULL);
  CHECK(strstr(buf, "x-a:") == NULL);
  mode = 6;
  CHECK(http_get(port, "/echo", buf, sizeof buf) == 500);
  mode = 7;
  {
    int st = http_get(port, "/big/100000", buf, sizeof buf);
    /* The head may be out already: then the body is cut short, never completed. */
    CHECK(st == 200 || st == 500 || st == -1);
    if (st == 200) CHECK(strlen(buf) < 100000);
  }
  mode = 8;
  CHECK(http_get(port, "/echo", buf, sizeof buf) == 200);
  OK(proxy_server_free(srv));
  puts("test_fail_closed ok");
  return 0;
}
