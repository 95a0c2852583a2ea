package proxy_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	proxy "github.com/libproxy/libproxy/bindings/go"
)

// genBody is the body of the gen origin's /gen/N: a 64 KiB block of text repeated, cut to n.
func genBody(n int) []byte {
	words := []string{"proxy", "stream", "header", "chunk", "origin", "client", "window", "frame"}
	var block bytes.Buffer
	x := uint32(2463534242)
	for block.Len() < 1<<16 {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		block.WriteString(words[x%uint32(len(words))])
		if x%11 == 0 {
			block.WriteByte('\n')
		} else {
			block.WriteByte(' ')
		}
	}
	b := bytes.Repeat(block.Bytes()[:1<<16], n>>16+1)
	return b[:n]
}

// newGenOrigin answers /gen/N with genBody(N) as text/plain, streamed in 64 KiB writes.
func newGenOrigin(t *testing.T) *httptest.Server {
	t.Helper()
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/gen/"))
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(n))
		body := genBody(n)
		for len(body) > 0 {
			k := min(len(body), 1<<16)
			_, _ = w.Write(body[:k])
			body = body[k:]
		}
	}))
	t.Cleanup(o.Close)
	return o
}

func compressAll(svc *proxy.Service) {
	_ = svc.SetCompression(proxy.CompressionEnabled, 1)
	_ = svc.SetCompression(proxy.CompressionMinLength, 0)
}

// fetchDecoded GETs url with the transport's own Accept-Encoding (gzip) and checks that the
// transport decoded a gzip body byte-identical to genBody(n).
func fetchDecoded(t *testing.T, c *http.Client, url string, n int, proto string) {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", url, err)
	}
	if res.Proto != proto || res.StatusCode != 200 {
		t.Fatalf("%s: %s %d", url, res.Proto, res.StatusCode)
	}
	// Uncompressed: the transport asked for gzip itself and decoded it.
	if !res.Uncompressed {
		t.Fatalf("%s: the response was not gzip-encoded (headers %v)", url, res.Header)
	}
	if !bytes.Equal(body, genBody(n)) {
		t.Fatalf("%s: %d decoded bytes differ from the origin's %d", url, len(body), n)
	}
}

var genSizes = []int{1, 1 << 10, 1 << 20, 50 << 20}

func TestCompressionGoClientHTTP1(t *testing.T) {
	o := newGenOrigin(t)
	_, base := startProxy(t, peerTo{hostPort(o)}, compressAll)
	c := &http.Client{Transport: &http.Transport{}}
	for _, n := range genSizes {
		fetchDecoded(t, c, base+"/gen/"+strconv.Itoa(n), n, "HTTP/1.1")
	}
}

// perRequest turns compression off for "?off" and records what a change answers in Logging.
type perRequest struct {
	peerTo
	mu   sync.Mutex
	late []error
}

func (h *perRequest) RequestFilter(s *proxy.Session) proxy.Action {
	if q, _ := s.Query(); q == "off" {
		if err := s.SetCompression(proxy.CompressionEnabled, 0); err != nil {
			return proxy.Fail
		}
	}
	return proxy.Continue
}

func (h *perRequest) Logging(s *proxy.Session) {
	err := s.SetCompression(proxy.CompressionEnabled, 1)
	h.mu.Lock()
	h.late = append(h.late, err)
	h.mu.Unlock()
}

func TestCompressionSettings(t *testing.T) {
	o := newGenOrigin(t)
	h := &perRequest{peerTo: peerTo{hostPort(o)}}
	_, base := startProxy(t, h, func(svc *proxy.Service) {
		if err := svc.SetCompression(proxy.CompressionLevelGzip, 10); !errors.Is(err, proxy.ErrInvalidParameter) {
			t.Errorf("level 10: %v", err)
		}
		if err := svc.SetCompressionTypes("plain"); !errors.Is(err, proxy.ErrInvalidParameter) {
			t.Errorf("types: %v", err)
		}
		must(t, svc.SetCompressionTypes("text/*"))
		must(t, svc.SetCompression(proxy.CompressionAlgorithms, proxy.EncodingGzip|proxy.EncodingZstd))
		must(t, svc.SetCompression(proxy.CompressionEnabled, 1))
	})
	r := do(t, "GET", base+"/gen/5000", map[string]string{"Accept-Encoding": "br, zstd"}, "")
	if got := r.header.Get("Content-Encoding"); got != "zstd" {
		t.Errorf("Content-Encoding %q, want zstd (br is not offered)", got)
	}
	r = do(t, "GET", base+"/gen/5000?off", map[string]string{"Accept-Encoding": "zstd"}, "")
	if got := r.header.Get("Content-Encoding"); got != "" || r.body != string(genBody(5000)) {
		t.Errorf("off for one request: Content-Encoding %q, %d bytes", got, len(r.body))
	}
	eventually(t, "logging ran twice", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.late) == 2
	})
	for _, err := range h.late {
		if !errors.Is(err, proxy.ErrWrongPhase) {
			t.Errorf("SetCompression in Logging: %v, want ErrWrongPhase", err)
		}
	}
}
