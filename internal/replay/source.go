package replay

// Gap is an inclusive range of offsets that no tier holds any more.
type Gap struct {
	From, To int64
}

// Page is one bounded read of a partition: an optional gap (records that are
// gone from every tier) followed by records in offset order.
type Page struct {
	Gap     *Gap
	Records []*Record
	// Tier names the tier that served Records (TierMemory, TierRedis,
	// TierKafka); empty when there are none.
	Tier string
}

// Limit bounds one page.
type Limit struct {
	Records int
	Bytes   int
}
