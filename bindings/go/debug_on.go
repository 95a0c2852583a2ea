//go:build debug

package proxy

import "runtime"

// debugGC runs a full collection before every handle access (`-tags debug`).
func debugGC() { runtime.GC() }
