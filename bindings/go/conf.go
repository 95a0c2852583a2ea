package proxy

/*
#include <stdlib.h>
#include <proxy.h>
*/
import "C"

import (
	"runtime"
	"sync"
	"unsafe"
)

// Conf mirrors proxy_conf: a configuration file loaded by the library with Pingora's flags
// (-c FILE, -d, -t, -u) read from the command line. Give it to Server.SetConf and
// Service.ApplyConf, then Close it (the server keeps its own reference).
type Conf struct {
	mu sync.Mutex
	p  *C.proxy_conf
}

// ConfFromArgs mirrors proxy_conf_from_args: takes -c/--conf, -d/--daemon, -t/--test and
// -u/--upgrade out of args (os.Args, program first) and does what they ask: loads the file; for
// -t checks it and exits the process; for -d goes to the background (the foreground process
// exits once the daemon serves); for -u takes the running proxy's listening sockets. It returns
// the rest of args in order, for the flag package:
//
//	conf, rest, err := proxy.ConfFromArgs(os.Args)
//	flag.CommandLine.Parse(rest[1:])
//
// A bad file is ErrConfigInvalid with "file:line:col: key: ..." in Detail.
func ConfFromArgs(args []string) (*Conf, []string, error) {
	if err := checkABI(); err != nil {
		return nil, nil, err
	}
	n := len(args)
	argv := (**C.char)(C.malloc(C.size_t(n+1) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(argv))
	slots := unsafe.Slice(argv, n+1)
	owned := make([]*C.char, n) // the library reorders slots: free what was allocated
	for i, a := range args {
		owned[i] = C.CString(a)
		slots[i] = owned[i]
	}
	slots[n] = nil
	defer func() {
		for _, p := range owned {
			C.free(unsafe.Pointer(p))
		}
	}()
	argc := C.int(n)
	var out *C.proxy_conf
	// The cause (file, line, key) is read on the thread that failed.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := check("proxy_conf_from_args", C.proxy_conf_from_args(&argc, argv, &out)); err != nil {
		return nil, nil, err
	}
	rest := make([]string, int(argc))
	for i := range rest {
		rest[i] = C.GoString(slots[i])
	}
	c := &Conf{p: out}
	runtime.SetFinalizer(c, (*Conf).Close)
	return c, rest, nil
}

// ptr returns the C handle with c.mu held; call c.mu.Unlock when done.
func (c *Conf) ptr() (*C.proxy_conf, error) {
	debugGC()
	c.mu.Lock()
	if c.p == nil {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	return c.p, nil
}

// Get mirrors proxy_conf_get: the effective value of key ("threads", "limits.header_timeout_ms",
// "services.proxy.listeners.0.address"). ErrNotFound for a key the configuration does not have.
func (c *Conf) Get(key string) (string, error) {
	p, err := c.ptr()
	if err != nil {
		return "", err
	}
	defer c.mu.Unlock()
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var out C.proxy_str
	if err := check("proxy_conf_get", C.proxy_conf_get(p, ck, &out)); err != nil {
		return "", err
	}
	v := C.GoStringN((*C.char)(unsafe.Pointer(out.ptr)), C.int(out.len))
	runtime.KeepAlive(c)
	return v, nil
}

// Features of operations (Features()).
const (
	FeatureConfig  Feature = C.PROXY_FEATURE_CONFIG
	FeatureUpgrade Feature = C.PROXY_FEATURE_UPGRADE
)

// ConfFlag is a PROXY_CONF_* bit.
type ConfFlag uint32

// The flags in effect (Conf.Flags).
const (
	ConfDaemon  ConfFlag = C.PROXY_CONF_DAEMON
	ConfTest    ConfFlag = C.PROXY_CONF_TEST
	ConfUpgrade ConfFlag = C.PROXY_CONF_UPGRADE
)

// Flags mirrors proxy_conf_flags.
func (c *Conf) Flags() (ConfFlag, error) {
	p, err := c.ptr()
	if err != nil {
		return 0, err
	}
	defer c.mu.Unlock()
	var out C.uint32_t
	err = check("proxy_conf_flags", C.proxy_conf_flags(p, &out))
	runtime.KeepAlive(c)
	return ConfFlag(out), err
}

// Group mirrors proxy_conf_group: the upstream group upstreams.<name> of the file, whose
// backends a reload changes. Close it like any Group.
func (c *Conf) Group(name string) (*Group, error) {
	p, err := c.ptr()
	if err != nil {
		return nil, err
	}
	defer c.mu.Unlock()
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	var id C.uint64_t
	if err := check("proxy_conf_group", C.proxy_conf_group(p, cn, &id)); err != nil {
		return nil, err
	}
	g := &Group{id: uint64(id)}
	runtime.SetFinalizer(g, func(g *Group) { _ = g.Close() })
	runtime.KeepAlive(c)
	return g, nil
}

// Close mirrors proxy_conf_free. Idempotent.
func (c *Conf) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.p == nil {
		return nil
	}
	runtime.SetFinalizer(c, nil)
	err := check("proxy_conf_free", C.proxy_conf_free(c.p))
	c.p = nil
	return err
}

// SetConf mirrors proxy_server_set_conf: grace period, log level, pid file, user and group, and
// what Reload and Upgrade use (before Start).
func (s *Server) SetConf(c *Conf) error {
	cp, err := c.ptr()
	if err != nil {
		return err
	}
	defer c.mu.Unlock()
	p, err := s.c.ptr()
	if err != nil {
		return err
	}
	err = check("proxy_server_set_conf", C.proxy_server_set_conf(p, cp))
	s.c.mu.RUnlock()
	runtime.KeepAlive(s)
	return err
}

// Reload mirrors proxy_server_reload: re-reads the configuration file; upstream groups, log level
// and grace period change, anything else is ErrReloadRefused (an upgrade is needed) and nothing
// is applied. Call it on SIGHUP.
func (s *Server) Reload() error {
	return s.call("proxy_server_reload", func(p *C.proxy_server) C.proxy_result { return C.proxy_server_reload(p) })
}

// Upgrade mirrors proxy_server_upgrade: hands every listening socket to the new process started
// with -u, then shuts down gracefully and returns once stopped. ErrUpgradeFailed (still serving)
// when no new process took them. Call it on SIGQUIT.
func (s *Server) Upgrade() error {
	return s.call("proxy_server_upgrade", func(p *C.proxy_server) C.proxy_result { return C.proxy_server_upgrade(p) })
}

func (s *Server) call(op string, f func(*C.proxy_server) C.proxy_result) error {
	p, err := s.c.ptr()
	if err != nil {
		return err
	}
	runtime.LockOSThread()
	err = check(op, f(p))
	runtime.UnlockOSThread()
	s.c.mu.RUnlock()
	runtime.KeepAlive(s)
	return err
}

// ApplyConf mirrors proxy_service_apply_conf: this service's settings from the file
// (services.<name>: threads, limits, listeners, bound now or taken over with -u).
func (s *Service) ApplyConf(c *Conf) error {
	cp, err := c.ptr()
	if err != nil {
		return err
	}
	defer c.mu.Unlock()
	p, err := s.ptr()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err = check("proxy_service_apply_conf", C.proxy_service_apply_conf(p, cp))
	runtime.KeepAlive(s)
	return err
}
