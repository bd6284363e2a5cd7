package replay

// Base64Frame returns the record's Server-Sent Events data in base64
// format (docs/PROTOCOL.md §3.9), made by encode on first use — at most
// once per record, however many SSE clients read it — and then shared, as
// JSONFrame is.
func (r *Record) Base64Frame(encode func(*Record) []byte) []byte {
	lf := r.b64.Load()
	if lf == nil {
		r.b64.CompareAndSwap(nil, &lazyFrame{})
		lf = r.b64.Load()
	}
	lf.once.Do(func() { lf.frame = encode(r) })
	return lf.frame
}
