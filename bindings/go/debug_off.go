//go:build !debug

package proxy

// debugGC is a no-op in normal builds; `-tags debug` makes every handle access run the GC so
// that a missing runtime.KeepAlive shows up as a crash in tests instead of in production.
func debugGC() {}
