package limits

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxTracked bounds how many client addresses a ConnLimiter tracks.
const DefaultMaxTracked = 65536

// sweepEvery is how often, at most, idle entries are swept lazily.
const sweepEvery = time.Minute

// LimiterConfig configures a ConnLimiter.
type LimiterConfig struct {
	// MaxPerIP bounds concurrent connections per address. 0: unlimited.
	MaxPerIP int
	// RatePerIP is new connections per second per address. 0: unlimited.
	RatePerIP float64
	// BurstPerIP is the token bucket size. 0: max(1, RatePerIP).
	BurstPerIP int
	// MaxTracked bounds the tracked addresses. 0: DefaultMaxTracked.
	MaxTracked int
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// ConnLimiter enforces per-address concurrent connection and connection
// rate limits. IPv4 addresses are tracked alone, IPv6 addresses per /64.
// Memory is bounded: an address is forgotten once it has no connection and a
// full bucket, and at most MaxTracked addresses are tracked.
type ConnLimiter struct {
	cfg LimiterConfig

	mu        sync.Mutex
	entries   map[netip.Addr]*entry // guarded by mu
	lastSweep time.Time             // guarded by mu
}

type entry struct {
	conns  int
	bucket *rate.Limiter // nil when the rate is unlimited
}

// NewConnLimiter builds a limiter.
func NewConnLimiter(cfg LimiterConfig) *ConnLimiter {
	if cfg.MaxTracked <= 0 {
		cfg.MaxTracked = DefaultMaxTracked
	}
	if cfg.BurstPerIP <= 0 {
		cfg.BurstPerIP = max(1, int(cfg.RatePerIP))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &ConnLimiter{cfg: cfg, entries: map[netip.Addr]*entry{}}
}

// Key is the address limits are counted under: ip itself for IPv4, its /64
// for IPv6.
func Key(ip netip.Addr) netip.Addr {
	ip = ip.Unmap().WithZone("")
	if !ip.Is6() {
		return ip
	}
	p, _ := ip.Prefix(64)
	return p.Addr()
}

// Acquire takes a connection slot for ip. On success release must be
// called when the connection ends (it is idempotent); on failure err is
// ErrTooManyConnections or ErrRateLimited and release is nil.
func (l *ConnLimiter) Acquire(ip netip.Addr) (release func(), err error) {
	key, now := Key(ip), l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e, err := l.entryFor(key, now)
	if err != nil {
		return nil, err
	}
	if l.cfg.MaxPerIP > 0 && e.conns >= l.cfg.MaxPerIP {
		return nil, ErrTooManyConnections
	}
	if e.bucket != nil && !e.bucket.AllowN(now, 1) {
		return nil, ErrRateLimited
	}
	e.conns++
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			l.release(key)
		}
	}, nil
}

// entryFor returns the entry of key, creating it if there is room.
func (l *ConnLimiter) entryFor(key netip.Addr, now time.Time) (*entry, error) {
	if e := l.entries[key]; e != nil {
		return e, nil
	}
	if now.Sub(l.lastSweep) >= sweepEvery || len(l.entries) >= l.cfg.MaxTracked {
		l.sweep(now, len(l.entries) >= l.cfg.MaxTracked)
	}
	if len(l.entries) >= l.cfg.MaxTracked {
		return nil, ErrTooManyConnections
	}
	e := &entry{}
	if l.cfg.RatePerIP > 0 {
		e.bucket = rate.NewLimiter(rate.Limit(l.cfg.RatePerIP), l.cfg.BurstPerIP)
	}
	l.entries[key] = e
	return e, nil
}

func (l *ConnLimiter) release(key netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[key]
	if e == nil {
		return
	}
	e.conns--
	if l.idle(e, l.cfg.Now(), false) {
		delete(l.entries, key)
	}
}

// idle reports whether e may be forgotten: no connection, and a full bucket
// unless force (memory pressure wins over remembering a partial bucket).
func (l *ConnLimiter) idle(e *entry, now time.Time, force bool) bool {
	if e.conns > 0 {
		return false
	}
	return force || e.bucket == nil || e.bucket.TokensAt(now) >= float64(l.cfg.BurstPerIP)
}

// sweep forgets idle entries. Caller holds mu.
func (l *ConnLimiter) sweep(now time.Time, force bool) {
	l.lastSweep = now
	for k, e := range l.entries {
		if l.idle(e, now, force) {
			delete(l.entries, k)
		}
	}
}

// Tracked is the number of addresses tracked now.
func (l *ConnLimiter) Tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// Active is the number of connections held by ip's key.
func (l *ConnLimiter) Active(ip netip.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.entries[Key(ip)]; e != nil {
		return e.conns
	}
	return 0
}
