package embedded

// RewriteAudit exposes rewriteAudit to the tests of this package.
func (s *Store) RewriteAudit(tenant string, seq int64, reason string) error {
	return s.rewriteAudit(tenant, seq, reason)
}
