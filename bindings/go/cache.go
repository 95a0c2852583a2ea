package proxy

/*
#include <stdlib.h>
#include "lp.h"
*/
import "C"

import (
	"errors"
	"runtime"
	"sync"
	"unsafe"
)

// CacheSetting selects a setting of a Cache (PROXY_CACHE_* of the settings group).
type CacheSetting uint32

// Cache settings, mirroring PROXY_CACHE_*; changed only before the cache is attached.
const (
	// CacheMaxObject: longer responses are passed on but not stored (default 8 MiB).
	CacheMaxObject CacheSetting = C.PROXY_CACHE_MAX_OBJECT
	// CacheStatusHeader: 1 adds x-cache-status to responses (default 0).
	CacheStatusHeader CacheSetting = C.PROXY_CACHE_STATUS_HEADER
	// CacheAllowSetCookie: 1 stores responses that set cookies (default 0).
	CacheAllowSetCookie CacheSetting = C.PROXY_CACHE_ALLOW_SET_COOKIE
	// CacheHeuristicFreshness: 1 gives responses without explicit freshness a heuristic
	// lifetime (default 0).
	CacheHeuristicFreshness CacheSetting = C.PROXY_CACHE_HEURISTIC_FRESHNESS
	// CacheLockTimeoutMs: how long a request waits for another fetching the same key, in ms
	// (default 5000).
	CacheLockTimeoutMs CacheSetting = C.PROXY_CACHE_LOCK_TIMEOUT_MS
)

// CacheDecision selects what a cache hook decides with Session.SetCache.
type CacheDecision uint32

// Cache hook decisions, mirroring PROXY_CACHE_*.
const (
	// CacheBypass (RequestCacheFilter): 1 keeps the request away from the cache.
	CacheBypass CacheDecision = C.PROXY_CACHE_BYPASS
	// CacheExpire (CacheHitFilter): 1 treats the stored response as expired.
	CacheExpire CacheDecision = C.PROXY_CACHE_EXPIRE
	// CacheStore (ResponseCacheFilter): 1 stores the response, 0 does not.
	CacheStore CacheDecision = C.PROXY_CACHE_STORE
	// CacheTTL (ResponseCacheFilter): its freshness lifetime in seconds.
	CacheTTL CacheDecision = C.PROXY_CACHE_TTL
)

// CacheStatus is what the cache did for a request (PROXY_CACHE_STATUS_*).
type CacheStatus uint32

// Cache statuses, mirroring PROXY_CACHE_STATUS_*.
const (
	CacheStatusNone        CacheStatus = C.PROXY_CACHE_STATUS_NONE
	CacheStatusHit         CacheStatus = C.PROXY_CACHE_STATUS_HIT
	CacheStatusMiss        CacheStatus = C.PROXY_CACHE_STATUS_MISS
	CacheStatusStale       CacheStatus = C.PROXY_CACHE_STATUS_STALE
	CacheStatusRevalidated CacheStatus = C.PROXY_CACHE_STATUS_REVALIDATED
	CacheStatusExpired     CacheStatus = C.PROXY_CACHE_STATUS_EXPIRED
	CacheStatusBypass      CacheStatus = C.PROXY_CACHE_STATUS_BYPASS
)

// Cache is an in-memory HTTP cache (proxy_cache): attach it with Service.SetCache (one cache
// in several services is shared by them). Close is idempotent; a finalizer closes a forgotten
// one. Services keep the cache after Close.
type Cache struct {
	mu sync.Mutex
	p  *C.proxy_cache
}

// NewCache mirrors proxy_cache_new: a cache of at most maxBytes.
func NewCache(maxBytes uint64) (*Cache, error) {
	if err := checkABI(); err != nil {
		return nil, err
	}
	var p *C.proxy_cache
	if err := check("proxy_cache_new", C.proxy_cache_new(C.uint64_t(maxBytes), &p)); err != nil {
		return nil, err
	}
	c := &Cache{p: p}
	runtime.SetFinalizer(c, (*Cache).Close)
	return c, nil
}

// lock returns the handle with c.mu held, or ErrClosed.
func (c *Cache) lock() (*C.proxy_cache, error) {
	c.mu.Lock()
	if c.p == nil {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	return c.p, nil
}

// Set mirrors proxy_cache_set: ErrWrongPhase once the cache is attached to a service.
func (c *Cache) Set(which CacheSetting, value uint64) error {
	p, err := c.lock()
	if err != nil {
		return err
	}
	defer c.mu.Unlock()
	return check("proxy_cache_set", C.proxy_cache_set(p, C.uint32_t(which), C.uint64_t(value)))
}

// Purge mirrors proxy_cache_purge: removes what is stored under key (by default
// "scheme://host/path?query"); whether there was anything.
func (c *Cache) Purge(key string) (bool, error) {
	p, err := c.lock()
	if err != nil {
		return false, err
	}
	defer c.mu.Unlock()
	ptr, n := cstr(key)
	err = check("proxy_cache_purge", C.proxy_cache_purge(p, (*C.uint8_t)(unsafe.Pointer(ptr)), n))
	runtime.KeepAlive(key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Usage mirrors proxy_cache_usage: the bytes and objects stored now.
func (c *Cache) Usage() (bytes, objects uint64, err error) {
	p, err := c.lock()
	if err != nil {
		return 0, 0, err
	}
	defer c.mu.Unlock()
	var b, o C.uint64_t
	err = check("proxy_cache_usage", C.proxy_cache_usage(p, &b, &o))
	return uint64(b), uint64(o), err
}

// Close frees this handle (services keep the cache). Idempotent.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.p != nil {
		C.proxy_cache_free(c.p)
		c.p = nil
		runtime.SetFinalizer(c, nil)
	}
	return nil
}

// SetCache mirrors proxy_service_set_cache: caches the service's GET and HEAD responses in
// cache.
func (s *Service) SetCache(cache *Cache) error {
	cp, err := cache.lock()
	if err != nil {
		return err
	}
	defer cache.mu.Unlock()
	p, err := s.ptr()
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	err = check("proxy_service_set_cache", C.proxy_service_set_cache(p, cp))
	runtime.KeepAlive(s)
	return err
}

// SetCache mirrors proxy_session_set_cache: a cache hook's decision (CacheBypass in
// RequestCacheFilter, CacheExpire in CacheHitFilter, CacheStore / CacheTTL in
// ResponseCacheFilter); ErrWrongPhase elsewhere.
func (s *Session) SetCache(which CacheDecision, value uint64) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	return check("proxy_session_set_cache", C.proxy_session_set_cache(p, C.uint32_t(which), C.uint64_t(value)))
}

// SetCacheKey mirrors proxy_session_set_cache_key (in CacheKeyCallback): this request's key.
func (s *Session) SetCacheKey(key string) error {
	p, err := s.ptr()
	if err != nil {
		return err
	}
	ptr, n := cstr(key)
	err = check("proxy_session_set_cache_key", C.proxy_session_set_cache_key(p, (*C.uint8_t)(unsafe.Pointer(ptr)), n))
	runtime.KeepAlive(key)
	return err
}

// CacheStatus mirrors proxy_session_cache_status: what the cache did so far (final in Logging).
func (s *Session) CacheStatus() (CacheStatus, error) {
	p, err := s.ptr()
	if err != nil {
		return CacheStatusNone, err
	}
	var v C.uint32_t
	err = check("proxy_session_cache_status", C.proxy_session_cache_status(p, &v))
	return CacheStatus(v), err
}
