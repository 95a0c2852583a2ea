//go:build go1.24

package proxy_test

import (
	"net/http"
	"strconv"
	"testing"
)

// HTTP/2 by prior knowledge (h2c) needs http.Protocols, new in Go 1.24.
func TestCompressionGoClientHTTP2(t *testing.T) {
	o := newGenOrigin(t)
	_, base := startProxy(t, peerTo{hostPort(o)}, compressAll)
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: tr}
	for _, n := range genSizes {
		fetchDecoded(t, c, base+"/gen/"+strconv.Itoa(n), n, "HTTP/2.0")
	}
}
