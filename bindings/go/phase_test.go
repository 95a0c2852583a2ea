package proxy

import "testing"

// The phase table comes from the library (proxy_phase_name / proxy_phase_may_pend).
func TestPhaseTableFromLibrary(t *testing.T) {
	names := map[Phase]string{
		PhaseNone:                "none",
		PhaseEarlyRequestFilter:  "early_request_filter",
		PhaseUpstreamPeer:        "upstream_peer",
		PhaseLogging:             "logging",
		PhaseResponseCacheFilter: "response_cache_filter",
		Phase(numPhases):         "Phase(20)",
	}
	for p, want := range names {
		if got := p.String(); got != want {
			t.Errorf("Phase(%d).String() = %q, want %q", uint32(p), got, want)
		}
	}
	for p := Phase(1); p < numPhases; p++ {
		if phaseNames[p] == "" {
			t.Errorf("the library names no phase %d", uint32(p))
		}
	}
	wait := map[Phase]bool{
		PhaseNone: false, PhaseRequestFilter: true, PhaseUpstreamPeer: true, PhaseFailToProxy: true,
		PhaseLogging: false, PhaseFailToConnect: false, PhaseRequestEnd: false, PhaseCacheHitFilter: false,
		Phase(numPhases): false,
	}
	for p, want := range wait {
		if got := p.canWait(); got != want {
			t.Errorf("%v.canWait() = %v, want %v", p, got, want)
		}
	}
}
