// Package clock makes time injectable so that handlers and jobs can be tested at any instant.
package clock

import "time"

// Clock tells the time.
type Clock interface{ Now() time.Time }

// System is the real wall clock.
type System struct{}

// Now returns the current time in UTC.
func (System) Now() time.Time { return time.Now().UTC() }

// Fixed is a clock stopped at one instant, for tests.
type Fixed time.Time

// Now returns the fixed instant.
func (f Fixed) Now() time.Time { return time.Time(f) }
