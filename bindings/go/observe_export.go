package proxy

/*
#include "lp.h"

// hbuf holds name0 value0 name1 value1 ... back to back (no Go pointer inside a C array); static
// inline, as a file with //export may not define functions the linker sees.
static inline proxy_result lp_error_page_set(proxy_error_page *page, uint32_t status, const char *hbuf,
                                             const size_t *lens, size_t n, const uint8_t *body, size_t blen) {
  proxy_header h[16];
  size_t i;
  if (n > 16) return PROXY_INVALID_PARAMETER;
  for (i = 0; i < n; i++) {
    h[i].name.ptr = hbuf;
    h[i].name.len = lens[2 * i];
    hbuf += lens[2 * i];
    h[i].value.ptr = hbuf;
    h[i].value.len = lens[2 * i + 1];
    hbuf += lens[2 * i + 1];
  }
  return proxy_error_page_set(page, status, n ? h : NULL, n, blen ? body : NULL, blen);
}
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// goProxyErrorResponse calls a service's ErrorResponse function (its cgo.Handle is the user
// pointer). A panic keeps the default page.
//
//export goProxyErrorResponse
func goProxyErrorResponse(user unsafe.Pointer, status C.uint32_t, what C.proxy_str, page *C.proxy_error_page) (action C.proxy_action) {
	action = C.PROXY_CONTINUE
	defer func() {
		if recover() != nil {
			action = C.PROXY_CONTINUE
		}
	}()
	fn := cgo.Handle(uintptr(user)).Value().(ErrorResponse)
	p, ok := fn(int(status), gostr(what))
	if !ok {
		return C.PROXY_CONTINUE
	}
	var hbuf []byte
	lens := make([]C.size_t, 0, 2*len(p.Headers))
	for _, h := range p.Headers {
		hbuf = append(hbuf, h.Name...)
		hbuf = append(hbuf, h.Value...)
		lens = append(lens, C.size_t(len(h.Name)), C.size_t(len(h.Value)))
	}
	var hp *C.char
	if len(hbuf) > 0 {
		hp = (*C.char)(unsafe.Pointer(&hbuf[0]))
	}
	var lp *C.size_t
	if len(lens) > 0 {
		lp = &lens[0]
	}
	bp, bl := cbytes(p.Body)
	if C.lp_error_page_set(page, C.uint32_t(p.Status), hp, lp, C.size_t(len(p.Headers)), bp, bl) != C.PROXY_OK {
		return C.PROXY_CONTINUE
	}
	return C.PROXY_RESPONDED
}
