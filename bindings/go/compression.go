package proxy

/*
#include <stdlib.h>
#include "lp.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// Compression selects a compression setting (PROXY_COMPRESSION_*) for Service.SetCompression
// and, the first five, Session.SetCompression.
type Compression uint32

// Compression settings, mirroring PROXY_COMPRESSION_*.
const (
	// CompressionEnabled: 1 compresses responses (service default 0).
	CompressionEnabled Compression = C.PROXY_COMPRESSION_ENABLED
	// CompressionAlgorithms: the codings offered, an OR of Encoding* (default all three).
	CompressionAlgorithms Compression = C.PROXY_COMPRESSION_ALGORITHMS
	// CompressionLevelGzip: gzip level 1..9 (default 6).
	CompressionLevelGzip Compression = C.PROXY_COMPRESSION_LEVEL_GZIP
	// CompressionLevelBrotli: brotli level 0..11 (default 4).
	CompressionLevelBrotli Compression = C.PROXY_COMPRESSION_LEVEL_BROTLI
	// CompressionLevelZstd: zstd level 1..22 (default 3).
	CompressionLevelZstd Compression = C.PROXY_COMPRESSION_LEVEL_ZSTD
	// CompressionMinLength: a shorter Content-Length is left alone (default 256). Service only.
	CompressionMinLength Compression = C.PROXY_COMPRESSION_MIN_LENGTH
	// CompressionDecompressUpstream: 1 decodes gzip/br/zstd upstream bodies before the
	// response phases see them. Service only.
	CompressionDecompressUpstream Compression = C.PROXY_COMPRESSION_DECOMPRESS_UPSTREAM
	// CompressionMaxRatio: decoding fails (502) past this output/input ratio, beyond the first
	// MiB. Service only.
	CompressionMaxRatio Compression = C.PROXY_COMPRESSION_MAX_RATIO
	// CompressionMaxDecoded: decoding fails (502) past this many bytes. Service only.
	CompressionMaxDecoded Compression = C.PROXY_COMPRESSION_MAX_DECODED
)

// Codings for CompressionAlgorithms, mirroring PROXY_ENCODING_*.
const (
	EncodingGzip   uint64 = C.PROXY_ENCODING_GZIP
	EncodingBrotli uint64 = C.PROXY_ENCODING_BROTLI
	EncodingZstd   uint64 = C.PROXY_ENCODING_ZSTD
)

// SetCompression mirrors proxy_service_set_compression: ErrInvalidParameter for an unknown
// setting or a value out of range (the service is unchanged then).
func (s *Service) SetCompression(which Compression, value uint64) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	err = check("proxy_service_set_compression",
		C.proxy_service_set_compression(p, C.uint32_t(which), C.uint64_t(value)))
	runtime.KeepAlive(s)
	return err
}

// SetCompressionTypes mirrors proxy_service_set_compression_types: the media types compressed,
// as a comma-separated list of "type/subtype", "type/*" or "type/*+suffix".
func (s *Service) SetCompressionTypes(types string) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	cs := C.CString(types)
	defer C.free(unsafe.Pointer(cs))
	err = check("proxy_service_set_compression_types", C.proxy_service_set_compression_types(p, cs))
	runtime.KeepAlive(s)
	return err
}

// SetCompression mirrors proxy_session_set_compression: CompressionEnabled,
// CompressionAlgorithms or a CompressionLevel* for this request only, before the response head
// goes out (ErrWrongPhase afterwards).
func (s *Session) SetCompression(which Compression, value uint64) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	return check("proxy_session_set_compression",
		C.proxy_session_set_compression(p, C.uint32_t(which), C.uint64_t(value)))
}
