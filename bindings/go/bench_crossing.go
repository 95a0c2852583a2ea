//go:build libproxy_bench

package proxy

// Built only with -tags libproxy_bench (bench/go): times the Go side of one hook call as
// libproxy makes it: a C thread calls the request_filter trampoline n times.

/*
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include "lp.h"

extern proxy_action goProxyBenchNop(void *user, proxy_session *s);

struct lp_bench { uintptr_t user; uint64_t n; uint64_t ns; int32_t last; int nop; };

static void *lp_bench_thread(void *arg) {
	struct lp_bench *b = (struct lp_bench *)arg;
	struct timespec t0, t1;
	uint64_t i;
	proxy_phase_fn f = b->nop ? goProxyBenchNop : goProxyRequestFilter;
	f((void *)b->user, NULL); // the first call binds this thread to an M
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < b->n; i++) b->last = f((void *)b->user, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	b->ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u + (uint64_t)(t1.tv_nsec - t0.tv_nsec);
	return NULL;
}

static uint64_t lp_bench_run(uintptr_t user, uint64_t n, int nop, int32_t *last) {
	pthread_t t;
	struct lp_bench b = {user, n, 0, 0, nop};
	if (pthread_create(&t, NULL, lp_bench_thread, &b) != 0) return 0;
	pthread_join(t, NULL);
	*last = b.last;
	return b.ns;
}
*/
import "C"

import (
	"runtime/cgo"
	"time"
)

// BenchHookCrossing calls h's RequestFilter n times from a fresh C thread through the real
// //export trampoline (session NULL: the hook must not touch it) and returns the time per call.
// With h nil it calls an empty //export function instead: the bare C->Go floor.
func BenchHookCrossing(h RequestFilter, n int) (time.Duration, Action) {
	nop := C.int(0)
	if h == nil {
		nop = 1
	}
	hk, _ := newHooks(h)
	handle := cgo.NewHandle(hk)
	defer handle.Delete()
	var last C.int32_t
	ns := C.lp_bench_run(C.uintptr_t(handle), C.uint64_t(n), nop, &last)
	return time.Duration(ns) / time.Duration(n), Action(last)
}
