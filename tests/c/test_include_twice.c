/* include/proxy.h is idempotent: everything in it, the static inline helpers included, sits inside
 * its include guard, so including it twice (directly and through another header) compiles. */
#define _POSIX_C_SOURCE 200809L /* before any system header, as common.h wants */
#include <proxy.h>
#include <proxy.h>
#include "common.h" /* includes proxy.h a third time */

int main(void) {
  proxy_str s = proxy_str_from_cstr("twice");
  CHECK(str_eq(s, "twice"));
  CHECK(proxy_str_from_cstr(NULL).len == 0);
  CHECK((proxy_abi_version() >> 16) == PROXY_ABI_VERSION_MAJOR);
  puts("test_include_twice ok");
  return 0;
}
