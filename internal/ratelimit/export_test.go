package ratelimit

// LocalKeys is the number of buckets the in-process fallback holds.
func LocalKeys(l *Limiter) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.local)
}
