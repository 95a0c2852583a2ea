package proxy

import (
	"runtime/cgo"
	"testing"
	"unsafe"
)

type nopFilter struct{}

func (nopFilter) RequestFilter(*Session) Action { return Continue }

// BenchmarkDispatch is the Go-side part of a hook call (without the cgo transition).
func BenchmarkDispatch(b *testing.B) {
	hk, _ := newHooks(nopFilter{})
	h := cgo.NewHandle(hk)
	defer h.Delete()
	user := *(*unsafe.Pointer)(unsafe.Pointer(&h))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if Action(dispatch(user, nil, PhaseRequestFilter)) != Continue {
			b.Fatal("not Continue")
		}
	}
}
