// Added cost of one no-op Go hook per request (not a timed test; run bench/go/run.sh).
//
// One process, one server, two proxy services with one worker thread each, same upstream:
//
//	base: UpstreamPeer only (a Go hook is needed to choose the peer)
//	hook: UpstreamPeer + a no-op RequestFilter
//
// wrk (-t1 -c50, pinned by run.sh) loads them alternately, ROUNDS times each; CPU time of this
// process (getrusage: libproxy workers + Go runtime) per request is compared.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime/pprof"
	"sort"
	"strconv"
	"syscall"
	"time"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

type base struct{ upstream string }

func (b *base) UpstreamPeer(s *proxy.Session) proxy.Action {
	if s.SetPeer(proxy.Peer{Address: b.upstream}) != nil {
		return proxy.Fail
	}
	return proxy.Continue
}

type withHook struct{ base }

func (withHook) RequestFilter(*proxy.Session) proxy.Action { return proxy.Continue }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var reqsRe = regexp.MustCompile(`(\d+) requests in`)
var rpsRe = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)

func runWrk(wrkCPU string, dur int, url string) (reqs int, rps float64, err error) {
	out, err := exec.Command("taskset", "-c", wrkCPU, "wrk", "-t1", "-c50", fmt.Sprintf("-d%ds", dur), url).CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	m := reqsRe.FindSubmatch(out)
	r := rpsRe.FindSubmatch(out)
	if m == nil || r == nil {
		return 0, 0, fmt.Errorf("cannot parse wrk output:\n%s", out)
	}
	reqs, _ = strconv.Atoi(string(m[1]))
	rps, _ = strconv.ParseFloat(string(r[1]), 64)
	return reqs, rps, nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func main() {
	upstream := flag.String("upstream", "127.0.0.1:18081", "origin address")
	dur := flag.Int("d", 5, "seconds per wrk run")
	rounds := flag.Int("rounds", 3, "alternating rounds")
	crossings := flag.Int("crossings", 2000000, "direct trampoline calls for the crossing measurement (0: skip)")
	wrkCPU := flag.String("wrk-cpu", "0", "CPU list for wrk (taskset -c)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the crossing measurement")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		check(err)
		check(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}

	if *crossings > 0 {
		// The Go side of one hook call, as libproxy makes it (C thread -> //export trampoline ->
		// cgo.Handle -> Session -> no-op RequestFilter), without network noise.
		var best, floor time.Duration
		for i := 0; i < 5; i++ {
			d, a := proxy.BenchHookCrossing(withHook{}, *crossings)
			if a != proxy.Continue {
				check(fmt.Errorf("crossing returned %v", a))
			}
			if best == 0 || d < best {
				best = d
			}
			d, _ = proxy.BenchHookCrossing(nil, *crossings)
			if floor == 0 || d < floor {
				floor = d
			}
		}
		fmt.Printf("direct crossing, best of 5 x %d calls from a C thread:\n  no-op Go RequestFilter via the binding: %.3f µs/call\n  empty //export function (cgo floor):    %.3f µs/call\n\n",
			*crossings, float64(best.Nanoseconds())/1e3, float64(floor.Nanoseconds())/1e3)
		if *rounds == 0 {
			pprof.StopCPUProfile()
			return
		}
	}

	srv, err := proxy.NewServer()
	check(err)
	defer srv.Close()
	check(srv.SetLogger(nil))
	ports := map[string]int{}
	for _, v := range []struct {
		name string
		h    any
	}{{"base", &base{*upstream}}, {"hook", &withHook{base{*upstream}}}} {
		svc, err := proxy.NewService(v.name)
		check(err)
		port, err := svc.AddTCP("127.0.0.1:0")
		check(err)
		check(svc.SetThreads(1))
		check(svc.SetHandler(v.h))
		check(srv.AddService(svc))
		ports[v.name] = port
	}
	check(srv.Start())
	url := func(n string) string { return fmt.Sprintf("http://127.0.0.1:%d/", ports[n]) }
	for _, n := range []string{"base", "hook"} { // warm-up
		_, _, err := runWrk(*wrkCPU, 1, url(n))
		check(err)
	}
	cpu := map[string][]float64{}
	wall := map[string][]float64{}
	for r := 0; r < *rounds; r++ {
		for _, n := range []string{"base", "hook"} {
			c0 := cpuTime()
			reqs, rps, err := runWrk(*wrkCPU, *dur, url(n))
			check(err)
			c := float64((cpuTime() - c0).Nanoseconds()) / 1e3 / float64(reqs)
			cpu[n] = append(cpu[n], c)
			wall[n] = append(wall[n], 1e6/rps)
			fmt.Printf("round %d %-4s %9.0f req/s  %6.2f µs/req wall  %6.2f CPU-µs/req\n", r+1, n, rps, 1e6/rps, c)
		}
	}
	cb, ch := median(cpu["base"]), median(cpu["hook"])
	wb, wh := median(wall["base"]), median(wall["hook"])
	fmt.Printf("\nmedian CPU-µs/req: base %.2f, hook %.2f -> one no-op Go hook adds %.2f µs/request\n", cb, ch, ch-cb)
	fmt.Printf("median wall µs/req (1/rps): base %.2f, hook %.2f -> %.2f µs\n", wb, wh, wh-wb)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
