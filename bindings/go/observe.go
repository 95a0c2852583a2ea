package proxy

/*
#include <stdlib.h>
#include "lp.h"

// Label names or values arrive as one buffer and their lengths (no Go pointer inside a C array,
// as cgo requires); these shims make the proxy_str array on the C stack.
static proxy_result lp_metric_new(proxy_server *s, uint32_t kind, const char *name, const char *help,
                                  const char *buf, const size_t *lens, size_t n, const double *buckets,
                                  size_t nb, proxy_metric **out) {
  proxy_str labels[16];
  size_t i, off = 0;
  if (n > 16) return PROXY_INVALID_PARAMETER;
  for (i = 0; i < n; i++) {
    labels[i].ptr = buf + off;
    labels[i].len = lens[i];
    off += lens[i];
  }
  return proxy_metric_new(s, kind, name, help, labels, n, buckets, nb, out);
}

static proxy_result lp_metric_series(proxy_metric *m, const char *buf, const size_t *lens, size_t n,
                                     proxy_series **out) {
  proxy_str values[16];
  size_t i, off = 0;
  if (n > 16) return PROXY_INVALID_PARAMETER;
  for (i = 0; i < n; i++) {
    values[i].ptr = buf + off;
    values[i].len = lens[i];
    off += lens[i];
  }
  return proxy_metric_series(m, values, n, out);
}

extern proxy_action goProxyErrorResponse(void *user, uint32_t status, proxy_str what, proxy_error_page *page);

static proxy_result lp_set_error_response(proxy_service *s, uintptr_t h) {
  return proxy_service_set_error_response(s, h ? goProxyErrorResponse : NULL, (void *)h);
}
*/
import "C"

import (
	"runtime"
	"runtime/cgo"
	"strings"
	"sync"
	"unsafe"
)

// Observe is an OR of PROXY_OBSERVE_* flags for Service.SetObserve.
type Observe uint32

const (
	// ObserveMetrics: the service's built-in metrics on the server's metrics endpoint.
	ObserveMetrics Observe = C.PROXY_OBSERVE_METRICS
	// ObserveRequestIDs: X-Request-Id (kept when valid, made otherwise) and a W3C traceparent upstream.
	ObserveRequestIDs Observe = C.PROXY_OBSERVE_REQUEST_IDS
	// ObserveErrorLog: every 5xx the proxy makes itself goes to the log with its cause (rate-limited).
	ObserveErrorLog Observe = C.PROXY_OBSERVE_ERROR_LOG
)

// MetricKind is a PROXY_METRIC_* kind.
type MetricKind uint32

const (
	// Counter only goes up; "_total" is appended to a name without it.
	Counter MetricKind = C.PROXY_METRIC_COUNTER
	// Gauge goes up and down.
	Gauge MetricKind = C.PROXY_METRIC_GAUGE
	// Histogram counts observations into buckets.
	Histogram MetricKind = C.PROXY_METRIC_HISTOGRAM
)

// maxLabels is how many labels the shims above take.
const maxLabels = 16

// packed joins strings into one buffer and their lengths, for the shims above.
func packed(items []string) (*C.char, *C.size_t, []byte, []C.size_t) {
	var buf []byte
	lens := make([]C.size_t, 0, len(items))
	for _, s := range items {
		buf = append(buf, s...)
		lens = append(lens, C.size_t(len(s)))
	}
	var bp *C.char
	if len(buf) > 0 {
		bp = (*C.char)(unsafe.Pointer(&buf[0]))
	}
	var lp *C.size_t
	if len(lens) > 0 {
		lp = &lens[0]
	}
	return bp, lp, buf, lens
}

// AddMetrics mirrors proxy_server_add_metrics: the metrics endpoint (GET /metrics, Prometheus
// text format) on listen ("127.0.0.1:0" picks a port); returns the port. Before Start/Run.
func (s *Server) AddMetrics(listen string) (uint16, error) {
	p, err := s.c.ptr()
	if err != nil {
		return 0, err
	}
	defer s.c.mu.RUnlock()
	cl := C.CString(listen)
	defer C.free(unsafe.Pointer(cl))
	var port C.uint16_t
	err = check("proxy_server_add_metrics", C.proxy_server_add_metrics(p, cl, &port))
	runtime.KeepAlive(s)
	return uint16(port), err
}

// ReopenLogs mirrors proxy_server_reopen_logs: reopens the access log files after a rename
// (log rotation); no line is lost.
func (s *Server) ReopenLogs() error {
	p, err := s.c.ptr()
	if err != nil {
		return err
	}
	defer s.c.mu.RUnlock()
	err = check("proxy_server_reopen_logs", C.proxy_server_reopen_logs(p))
	runtime.KeepAlive(s)
	return err
}

// SetLogFile mirrors proxy_server_set_log_file: also writes the server's log messages up to
// maxLevel (1 error .. 4 debug) to the file path, one timestamped line each; "" stops.
func (s *Server) SetLogFile(path string, maxLevel int) error {
	p, err := s.c.ptr()
	if err != nil {
		return err
	}
	defer s.c.mu.RUnlock()
	var cp *C.char
	if path != "" {
		cp = C.CString(path)
		defer C.free(unsafe.Pointer(cp))
	}
	err = check("proxy_server_set_log_file", C.proxy_server_set_log_file(p, cp, C.uint32_t(maxLevel)))
	runtime.KeepAlive(s)
	return err
}

// Metric is a metric family (proxy_metric), owned by its server. Labels looks a series up once
// per label set and keeps it.
type Metric struct {
	core   *serverCore
	p      *C.proxy_metric
	mu     sync.Mutex
	series map[string]*Series
}

// Series is one labelled series (proxy_series). Its updates take no lock in the library; the
// binding takes the server's read lock so that a Close cannot free it mid-call.
type Series struct {
	core *serverCore
	p    *C.proxy_series
}

// NewMetric mirrors proxy_metric_new: a counter, gauge or histogram on the metrics endpoint, with
// label names labels and, for a histogram, bucket upper bounds (none: Prometheus' defaults).
// Defining the same metric again returns an equal handle. Any time, any goroutine.
func (s *Server) NewMetric(kind MetricKind, name, help string, labels []string, buckets []float64) (*Metric, error) {
	if len(labels) > maxLabels {
		return nil, &Error{Op: "proxy_metric_new", Code: CodeInvalidParameter}
	}
	p, err := s.c.ptr()
	if err != nil {
		return nil, err
	}
	defer s.c.mu.RUnlock()
	cn, ch := C.CString(name), C.CString(help)
	defer C.free(unsafe.Pointer(cn))
	defer C.free(unsafe.Pointer(ch))
	bp, lp, buf, lens := packed(labels)
	var bk *C.double
	if len(buckets) > 0 {
		bk = (*C.double)(unsafe.Pointer(&buckets[0]))
	}
	var out *C.proxy_metric
	r := C.lp_metric_new(p, C.uint32_t(kind), cn, ch, bp, lp, C.size_t(len(labels)), bk, C.size_t(len(buckets)), &out)
	runtime.KeepAlive(buf)
	runtime.KeepAlive(lens)
	runtime.KeepAlive(buckets)
	runtime.KeepAlive(s)
	if err := check("proxy_metric_new", r); err != nil {
		return nil, err
	}
	return &Metric{core: s.c, p: out, series: map[string]*Series{}}, nil
}

// Labels mirrors proxy_metric_series: the series for values (one per label name, in order),
// looked up in C once per label set and cached here.
func (m *Metric) Labels(values ...string) (*Series, error) {
	key := strings.Join(values, "\x00")
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.series[key]; ok {
		return s, nil
	}
	if len(values) > maxLabels {
		return nil, &Error{Op: "proxy_metric_series", Code: CodeInvalidParameter}
	}
	if _, err := m.core.ptr(); err != nil {
		return nil, err
	}
	defer m.core.mu.RUnlock()
	bp, lp, buf, lens := packed(values)
	var out *C.proxy_series
	r := C.lp_metric_series(m.p, bp, lp, C.size_t(len(values)), &out)
	runtime.KeepAlive(buf)
	runtime.KeepAlive(lens)
	if err := check("proxy_metric_series", r); err != nil {
		return nil, err
	}
	s := &Series{core: m.core, p: out}
	m.series[key] = s
	return s, nil
}

func (s *Series) update(op string, f func(*C.proxy_series) C.proxy_result) error {
	if _, err := s.core.ptr(); err != nil {
		return err
	}
	defer s.core.mu.RUnlock()
	return check(op, f(s.p))
}

// Add mirrors proxy_series_add: adds v to a counter (not negative) or a gauge.
func (s *Series) Add(v float64) error {
	return s.update("proxy_series_add", func(p *C.proxy_series) C.proxy_result { return C.proxy_series_add(p, C.double(v)) })
}

// Set mirrors proxy_series_set: sets a gauge.
func (s *Series) Set(v float64) error {
	return s.update("proxy_series_set", func(p *C.proxy_series) C.proxy_result { return C.proxy_series_set(p, C.double(v)) })
}

// Observe mirrors proxy_series_observe: records an observation in a histogram.
func (s *Series) Observe(v float64) error {
	return s.update("proxy_series_observe", func(p *C.proxy_series) C.proxy_result { return C.proxy_series_observe(p, C.double(v)) })
}

// SetObserve mirrors proxy_service_set_observe: an OR of Observe flags.
func (s *Service) SetObserve(flags Observe) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	err = check("proxy_service_set_observe", C.proxy_service_set_observe(p, C.uint32_t(flags)))
	runtime.KeepAlive(s)
	return err
}

// SetAccessLog mirrors proxy_service_set_access_log: one line per request to path ("" for the
// server's log) in format: "combined", "json" or a $variable template.
func (s *Service) SetAccessLog(path, format string) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	var cp *C.char
	if path != "" {
		cp = C.CString(path)
		defer C.free(unsafe.Pointer(cp))
	}
	cf := C.CString(format)
	defer C.free(unsafe.Pointer(cf))
	err = check("proxy_service_set_access_log", C.proxy_service_set_access_log(p, cp, cf))
	runtime.KeepAlive(s)
	return err
}

// ErrorPage is a response that replaces one the proxy makes itself.
type ErrorPage struct {
	Status  int
	Headers []Header
	Body    []byte
}

// ErrorResponse may replace an error response the proxy makes itself: status (4xx or 5xx) and
// what happened in a few words; return the page and true, or false for the default page. It runs
// on worker threads, concurrently, also for malformed requests refused before any hook.
type ErrorResponse func(status int, what string) (ErrorPage, bool)

// SetErrorResponse mirrors proxy_service_set_error_response. The function is kept until the
// process exits (one handle per call).
func (s *Service) SetErrorResponse(fn ErrorResponse) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	h := cgo.NewHandle(fn)
	err = check("proxy_service_set_error_response", C.lp_set_error_response(p, C.uintptr_t(h)))
	if err != nil {
		h.Delete()
	}
	runtime.KeepAlive(s)
	return err
}

// RequestID mirrors proxy_session_request_id: the request's X-Request-Id on a service with
// ObserveRequestIDs ("" and an error with CodeNotFound otherwise).
func (s *Session) RequestID() (string, error) {
	return s.str("proxy_session_request_id", func(p *C.proxy_session, o *C.proxy_str) C.proxy_result {
		return C.proxy_session_request_id(p, o)
	})
}
