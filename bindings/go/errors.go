package proxy

/*
#include <proxy.h>
*/
import "C"

import (
	"errors"
	"strconv"
	"strings"
	"unsafe"
)

// Code is a libproxy result code (proxy_result). 0 is success; errors start at 7000.
type Code uint32

// Result codes, mirroring PROXY_* in proxy.h.
const (
	CodeOK               Code = C.PROXY_OK
	CodeNullParameter    Code = C.PROXY_NULL_PARAMETER
	CodeInvalidParameter Code = C.PROXY_INVALID_PARAMETER
	CodePanic            Code = C.PROXY_PANIC
	CodeIO               Code = C.PROXY_IO
	CodeWrongPhase       Code = C.PROXY_WRONG_PHASE
	CodeGone             Code = C.PROXY_GONE
	CodeAlready          Code = C.PROXY_ALREADY
	CodeHeaderInvalid    Code = C.PROXY_HEADER_INVALID
	CodeNotFound         Code = C.PROXY_NOT_FOUND
	CodeBusy             Code = C.PROXY_BUSY
	CodeTooSmall         Code = C.PROXY_TOO_SMALL
	CodeWrongState       Code = C.PROXY_WRONG_STATE
	CodeUnsupported      Code = C.PROXY_UNSUPPORTED
	CodeTLSInvalid       Code = C.PROXY_TLS_INVALID
	CodeUnavailable      Code = C.PROXY_UNAVAILABLE
	CodeConfigInvalid    Code = C.PROXY_CONFIG_INVALID
	CodeUpgradeFailed    Code = C.PROXY_UPGRADE_FAILED
	CodeReloadRefused    Code = C.PROXY_RELOAD_REFUSED
	CodeDaemonFailed     Code = C.PROXY_DAEMON_FAILED
)

// String is libproxy's description of the code (proxy_result_message).
func (c Code) String() string { return C.GoString(C.proxy_result_message(C.proxy_result(c))) }

// Error is a failed libproxy call: the C function (Op) and its result code. Compare with
// errors.Is against the Err* values, which match on the code alone:
//
//	if errors.Is(err, proxy.ErrNotFound) { ... }
type Error struct {
	Op     string // the C function, e.g. "proxy_session_header_set"
	Code   Code
	Detail string // libproxy's cause when it gives one (proxy_last_error), e.g. "bind 127.0.0.1:80: Permission denied (os error 13)"
}

func (e *Error) Error() string {
	if e.Detail != "" {
		return "libproxy: " + e.Op + ": " + e.Code.String() + " (" + strconv.Itoa(int(e.Code)) + "): " + e.Detail
	}
	if e.Op == "" {
		return "libproxy: " + e.Code.String() + " (" + strconv.Itoa(int(e.Code)) + ")"
	}
	return "libproxy: " + e.Op + ": " + e.Code.String() + " (" + strconv.Itoa(int(e.Code)) + ")"
}

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is; each matches any *Error with its code.
var (
	ErrNullParameter    = &Error{Code: CodeNullParameter}
	ErrInvalidParameter = &Error{Code: CodeInvalidParameter}
	ErrPanic            = &Error{Code: CodePanic}
	ErrIO               = &Error{Code: CodeIO}
	ErrWrongPhase       = &Error{Code: CodeWrongPhase}
	ErrGone             = &Error{Code: CodeGone}
	ErrAlready          = &Error{Code: CodeAlready}
	ErrHeaderInvalid    = &Error{Code: CodeHeaderInvalid}
	ErrNotFound         = &Error{Code: CodeNotFound}
	ErrBusy             = &Error{Code: CodeBusy}
	ErrTooSmall         = &Error{Code: CodeTooSmall}
	ErrWrongState       = &Error{Code: CodeWrongState}
	ErrUnsupported      = &Error{Code: CodeUnsupported}
	ErrTLSInvalid       = &Error{Code: CodeTLSInvalid}
	ErrUnavailable      = &Error{Code: CodeUnavailable}
	ErrConfigInvalid    = &Error{Code: CodeConfigInvalid}
	ErrUpgradeFailed    = &Error{Code: CodeUpgradeFailed}
	ErrReloadRefused    = &Error{Code: CodeReloadRefused}
	ErrDaemonFailed     = &Error{Code: CodeDaemonFailed}
)

// ErrClosed is returned by every method of a Server or Service that
// was closed, or of a Service that a Server consumed. It is a Go-side check: the C handle is
// never touched after it was freed.
var ErrClosed = errors.New("libproxy: use of a closed or consumed object")

// ErrSessionDone is returned by Session methods called after the callback returned (or after
// the session was resumed): the C session may already be gone, so it is not touched.
var ErrSessionDone = errors.New("libproxy: session used outside its callback")

// check turns a result into an error with the library's cause (proxy_last_error) as Detail.
// The last error is per OS thread and a goroutine can move to another thread between two cgo
// calls (rarely: only after a long call lost its P), so the cause is taken only when the thread's
// last error has the same code; calls whose cause matters most (binding endpoints) lock the
// thread around the call and the read.
func check(op string, r C.proxy_result) error {
	if r == C.PROXY_OK {
		return nil
	}
	return &Error{Op: op, Code: Code(r), Detail: lastErrorCause(r)}
}

// lastErrorCause is this thread's proxy_last_error for a failure with code r, without the
// proxy_result_message prefix that Error.Error already prints; "" when there is none.
func lastErrorCause(r C.proxy_result) string {
	if C.proxy_last_error_code() != r {
		return ""
	}
	n := C.proxy_last_error(nil, 0)
	buf := make([]byte, int(n)+1)
	C.proxy_last_error((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	text := string(buf[:n])
	prefix := Code(r).String()
	if text == prefix {
		return ""
	}
	return strings.TrimPrefix(text, prefix+": ")
}
