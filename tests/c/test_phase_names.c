/* proxy_phase_name / proxy_phase_may_pend: every phase has its callbacks-struct field's name, the
 * table ends with NULL right after the last phase, and PENDING is allowed exactly where the
 * proxy waits for it (the logging, retry and cache decisions cannot wait). */
#include "common.h"

int main(void) {
  uint32_t n = 1;
  CHECK(strcmp(proxy_phase_name(PROXY_PHASE_NONE), "none") == 0);
  CHECK(strcmp(proxy_phase_name(PROXY_PHASE_EARLY_REQUEST_FILTER), "early_request_filter") == 0);
  CHECK(strcmp(proxy_phase_name(PROXY_PHASE_UPSTREAM_PEER), "upstream_peer") == 0);
  CHECK(strcmp(proxy_phase_name(PROXY_PHASE_RESPONSE_CACHE_FILTER), "response_cache_filter") == 0);
  while (proxy_phase_name(n) != NULL) n++;
  CHECK(n == PROXY_PHASE_RESPONSE_CACHE_FILTER + 1);
  /* One callback field per phase after struct_size and user, in phase order. */
  CHECK(sizeof(proxy_http_callbacks) ==
        offsetof(proxy_http_callbacks, early_request_filter) + (n - 1) * sizeof(proxy_phase_fn));
  CHECK(proxy_phase_name(0xffffffffu) == NULL);
  CHECK(proxy_phase_may_pend(PROXY_PHASE_NONE) == 0);
  CHECK(proxy_phase_may_pend(PROXY_PHASE_REQUEST_FILTER) == 1);
  CHECK(proxy_phase_may_pend(PROXY_PHASE_UPSTREAM_PEER) == 1);
  CHECK(proxy_phase_may_pend(PROXY_PHASE_FAIL_TO_PROXY) == 1);
  CHECK(proxy_phase_may_pend(PROXY_PHASE_LOGGING) == 0);
  CHECK(proxy_phase_may_pend(PROXY_PHASE_FAIL_TO_CONNECT) == 0);
  CHECK(proxy_phase_may_pend(PROXY_PHASE_REQUEST_END) == 0);
  CHECK(proxy_phase_may_pend(PROXY_PHASE_CACHE_HIT_FILTER) == 0);
  CHECK(proxy_phase_may_pend(n) == 0);
  puts("test_phase_names ok");
  return 0;
}
