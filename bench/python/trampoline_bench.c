/* Calls a phase callback N times from a thread Python did not create, like a libproxy worker:
 * on_start (the service's thread hook) first, on_stop last. Built by trampoline_bench.py. */
#include <pthread.h>
#include <stdint.h>
#include <time.h>

typedef int32_t (*phase_fn)(void *user, void *session);
typedef void (*thread_fn)(void *user);

struct job {
    phase_fn f;
    void *user, *session;
    long n;
    thread_fn on_start, on_stop;
    double ns_per_call;
    int32_t last;
};

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static void *worker(void *p) {
    struct job *j = p;
    if (j->on_start) j->on_start(NULL);
    for (long i = 0; i < 2000; i++) j->last = j->f(j->user, j->session); /* warm-up */
    double t0 = now_ns();
    for (long i = 0; i < j->n; i++) j->last = j->f(j->user, j->session);
    j->ns_per_call = (now_ns() - t0) / (double)j->n;
    if (j->on_stop) j->on_stop(NULL);
    return NULL;
}

/* Returns ns per call; *last receives the callback's last return value. */
double bench_phase(phase_fn f, void *user, void *session, long n, thread_fn on_start,
                   thread_fn on_stop, int32_t *last) {
    struct job j = {f, user, session, n, on_start, on_stop, 0.0, 0};
    pthread_t t;
    if (pthread_create(&t, NULL, worker, &j) != 0) return -1.0;
    pthread_join(t, NULL);
    *last = j.last;
    return j.ns_per_call;
}
