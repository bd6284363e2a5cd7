package limits

// Budget splits the process's open-file limit between the public listener,
// the internal listener and everything else the gateway opens (Kafka and
// Redis connections, listeners, files). Every accepted connection costs one
// file descriptor, so admission stops below the limit instead of letting
// accept(2) fail with EMFILE: at EMFILE net/http backs off and retries,
// connections queue unanswered in the kernel, and probes time out.
type Budget struct {
	// FDLimit is the soft RLIMIT_NOFILE the budget was derived from. 0:
	// unknown (the platform has no such limit).
	FDLimit int
	// Reserve is what is kept for anything but public connections.
	Reserve int
	// WebSockets bounds live WebSocket sessions (WEBSOCKET_MAX_CONNECTIONS).
	WebSockets int
	// PublicConns bounds connections open on the public listener: every
	// WebSocket session plus room for plain HTTP requests and for answering
	// refused upgrades.
	PublicConns int
	// InternalConns bounds connections open on the internal listener.
	InternalConns int
	// Refusing bounds connections being answered 503 by a full listener at
	// once; beyond it they are closed at once.
	Refusing int
}

// Budget sizing. MinReserve covers an idle gateway (about 22 descriptors
// with the embedded broker: stdio, epoll, listeners, Kafka clients and the
// broker's side of them) plus a Redis pool and a few brokers; a tenth of a
// large limit leaves room for bigger pools and bursts of short requests.
const (
	MinReserve = 64
	// maxFDLimit caps a huge or unlimited limit (Linux's default nr_open).
	maxFDLimit = 1 << 20
	// unknownLimitWebSockets is the default cap where there is no fd limit.
	unknownLimitWebSockets = 10000
)

// BudgetFor derives the budget from the soft fd limit (0: unknown) and the
// configured session cap (0: derived, the limit minus the reserve). The
// reserve is max(MinReserve, limit/10); of it, an eighth is public-listener
// headroom beyond the sessions, an eighth the internal listener and a
// sixteenth the refusals, which leaves at least half of it for Kafka, Redis
// and files.
func BudgetFor(fdLimit, maxWebSockets int) Budget {
	fdLimit = min(max(fdLimit, 0), maxFDLimit)
	b := Budget{FDLimit: fdLimit, Reserve: max(MinReserve, fdLimit/10)}
	switch {
	case maxWebSockets > 0:
		b.WebSockets = maxWebSockets
	case fdLimit == 0:
		b.WebSockets = unknownLimitWebSockets
	default:
		b.WebSockets = max(1, fdLimit-b.Reserve)
	}
	b.PublicConns = b.WebSockets + max(4, b.Reserve/8)
	b.InternalConns = min(max(b.Reserve/8, 8), 64)
	b.Refusing = min(max(b.Reserve/16, 4), 64)
	return b
}

// Overcommitted reports whether the budget promises more descriptors than
// the limit has (an explicit WEBSOCKET_MAX_CONNECTIONS too high for it).
func (b Budget) Overcommitted() bool {
	return b.FDLimit > 0 && b.PublicConns+b.InternalConns+b.Refusing > b.FDLimit-b.Reserve/2
}
