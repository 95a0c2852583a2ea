package proxy_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

type pickFrom struct{ g *proxy.Group }

func (h pickFrom) UpstreamPeer(s *proxy.Session) proxy.Action {
	if s.Pick(h.g, nil) != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

func confText(dir, backend, level, listen string) string {
	return fmt.Sprintf("grace_period_seconds: 5\nlog_level: %s\nupgrade_sock: %s/up.sock\n"+
		"upgrade_sock_connect_accept_max_retries: 2\nservices:\n  proxy:\n    threads: 2\n"+
		"    listeners:\n      - address: %s\nupstreams:\n  app:\n    backends: [%s]\n", level, dir, listen, backend)
}

// The library takes its flags and Go's flag package parses the rest; values round-trip; a group
// from the file serves requests and follows a reload; a listener change is refused.
func TestConfFlagsGroupAndReload(t *testing.T) {
	one, two := newOrigin(t, "one"), newOrigin(t, "two")
	dir := t.TempDir()
	path := filepath.Join(dir, "proxy.yaml")
	must(t, os.WriteFile(path, []byte(confText(dir, hostPort(one), "info", "127.0.0.1:0")), 0o600))

	conf, rest, err := proxy.ConfFromArgs([]string{"prog", "-c", path, "-name=x", "pos"})
	must(t, err)
	defer conf.Close()
	fs := flag.NewFlagSet("prog", flag.ContinueOnError)
	name := fs.String("name", "", "")
	must(t, fs.Parse(rest[1:]))
	if *name != "x" || fs.Arg(0) != "pos" || len(rest) != 3 {
		t.Fatalf("rest %q, -name %q", rest, *name)
	}
	for key, want := range map[string]string{
		"grace_period_seconds":               "5",
		"services.proxy.threads":             "2",
		"services.proxy.listeners.0.address": "127.0.0.1:0",
		"upstreams.app.backends.0.address":   hostPort(one),
	} {
		if got, err := conf.Get(key); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", key, got, err, want)
		}
	}
	if _, err := conf.Get("nope"); !errors.Is(err, proxy.ErrNotFound) {
		t.Errorf("unknown key: %v", err)
	}

	g, err := conf.Group("app")
	must(t, err)
	defer g.Close()
	srv, err := proxy.NewServer()
	must(t, err)
	defer srv.Close()
	must(t, srv.SetConf(conf))
	svc, err := proxy.NewService("proxy")
	must(t, err)
	must(t, svc.ApplyConf(conf))
	port, err := svc.AddTCP("127.0.0.1:0")
	must(t, err)
	must(t, svc.SetHandler(pickFrom{g}))
	must(t, srv.AddService(svc))
	must(t, srv.Start())
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/echo"
	if r := do(t, "GET", url, nil, ""); r.header.Get("X-Origin") != "one" {
		t.Fatalf("before reload: %d %q", r.status, r.header.Get("X-Origin"))
	}

	must(t, os.WriteFile(path, []byte(confText(dir, hostPort(two), "debug", "127.0.0.1:0")), 0o600))
	must(t, srv.Reload())
	if r := do(t, "GET", url, nil, ""); r.header.Get("X-Origin") != "two" {
		t.Fatalf("after reload: %d %q", r.status, r.header.Get("X-Origin"))
	}
	if lvl, _ := conf.Get("log_level"); lvl != "debug" {
		t.Errorf("log_level after reload: %q", lvl)
	}

	must(t, os.WriteFile(path, []byte(confText(dir, hostPort(two), "debug", "127.0.0.1:1")), 0o600))
	err = srv.Reload()
	if !errors.Is(err, proxy.ErrReloadRefused) || !strings.Contains(err.Error(), "upgrade") {
		t.Fatalf("listener change: %v", err)
	}
	// Without -u there is nobody to hand the sockets to: the server keeps serving.
	if err := srv.Upgrade(); !errors.Is(err, proxy.ErrUpgradeFailed) {
		t.Fatalf("upgrade without a new process: %v", err)
	}
	if r := do(t, "GET", url, nil, ""); r.header.Get("X-Origin") != "two" {
		t.Fatalf("after refusals: %d %q", r.status, r.header.Get("X-Origin"))
	}
}

func TestConfBadFileNamesLineAndKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	must(t, os.WriteFile(path, []byte("daemon: false\nlimits:\n  write_timeout_ms: soon\n"), 0o600))
	_, _, err := proxy.ConfFromArgs([]string{"prog", "--conf=" + path})
	if !errors.Is(err, proxy.ErrConfigInvalid) || !strings.Contains(err.Error(), path+":3:21: limits.write_timeout_ms: expected") {
		t.Fatalf("bad file: %v", err)
	}
	if proxy.Features()&proxy.FeatureConfig == 0 || proxy.Features()&proxy.FeatureUpgrade == 0 {
		t.Fatal("feature bits missing")
	}
}
