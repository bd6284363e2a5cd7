package hub

import "github.com/dashflow/dashstream-gateway/internal/replay"

// visible applies the tenant restriction of the session (auth.Identity):
// a tenant-restricted client gets only its tenant's records — no other
// tenant's, none without a tenant, no skipped markers (they would reveal
// other tenants' offsets). collect still advances the position over the
// records it hides, so they need no gap frame.
func (s *session) visible(r *replay.Record) bool {
	return s.tenant == "" || (r.Skipped == "" && r.Tenant == s.tenant)
}
