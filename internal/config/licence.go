package config

import (
	"fmt"
	"strconv"
	"strings"
)

// DefaultLicenceGraceDays is how long the agents of a client whose licence expired are still
// served when LICENSE_GRACE_DAYS is unset.
const DefaultLicenceGraceDays = 14

// LicenceGraceDays reads LICENSE_GRACE_DAYS: the days after a licence's expiry during which
// its agents are still served (0: none), 0 to 365; unset: DefaultLicenceGraceDays.
func LicenceGraceDays(getenv func(string) string) (int, error) {
	v := strings.TrimSpace(getenv("LICENSE_GRACE_DAYS"))
	if v == "" {
		return DefaultLicenceGraceDays, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 365 {
		return 0, fmt.Errorf("LICENSE_GRACE_DAYS must be a whole number of days from 0 to 365, not %q", v)
	}
	return n, nil
}
