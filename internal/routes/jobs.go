package routes

import (
	"fmt"
	"time"
)

// Cadence is how often a job runs: every Every, or, when DailyAt is set, once a day at
// that time of day (UTC). EventBridge expressions and the local stack's timers are both
// derived from it, so a cadence is written once.
type Cadence struct {
	Every   time.Duration
	DailyAt time.Duration // offset from midnight UTC; Every is then ignored
}

// EveryDuration is a cadence of a fixed period.
func EveryDuration(d time.Duration) Cadence { return Cadence{Every: d} }

// Daily is a cadence of once a day at hh:mm UTC.
func Daily(hour, minute int) Cadence {
	return Cadence{DailyAt: time.Duration(hour)*time.Hour + time.Duration(minute)*time.Minute}
}

// Expression is the EventBridge schedule expression: rate(...) for a period in whole
// minutes, cron(...) for a daily time.
func (c Cadence) Expression() (string, error) {
	if c.DailyAt > 0 {
		if c.DailyAt >= 24*time.Hour || c.DailyAt%time.Minute != 0 {
			return "", fmt.Errorf("daily time %v is not a minute of the day", c.DailyAt)
		}
		return fmt.Sprintf("cron(%d %d * * ? *)", int(c.DailyAt/time.Minute)%60, int(c.DailyAt/time.Hour)), nil
	}
	if c.Every < time.Minute || c.Every%time.Minute != 0 {
		return "", fmt.Errorf("period %v is not a whole number of minutes (EventBridge's smallest rate is 1 minute)", c.Every)
	}
	n, unit := int64(c.Every/time.Minute), "minute"
	switch {
	case c.Every%(24*time.Hour) == 0:
		n, unit = int64(c.Every/(24*time.Hour)), "day"
	case c.Every%time.Hour == 0:
		n, unit = int64(c.Every/time.Hour), "hour"
	}
	if n != 1 {
		unit += "s"
	}
	return fmt.Sprintf("rate(%d %s)", n, unit), nil
}

// Next is the first run strictly after now: now + Every, or the next daily time.
func (c Cadence) Next(now time.Time) time.Time {
	if c.DailyAt > 0 {
		now = now.UTC()
		next := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).Add(c.DailyAt)
		if !next.After(now) {
			next = next.AddDate(0, 0, 1)
		}
		return next
	}
	return now.Add(c.Every)
}

// Job is one scheduled task and the function that runs it.
type Job struct {
	Name     string
	Function string
	Cadence  Cadence
}

// Jobs is every scheduled task: EventBridge schedules on AWS, timers in the local stack.
func Jobs() []Job {
	return []Job{
		// Alerting (issue 13): evaluation then notification, every minute.
		{Name: "alerts", Function: FnAlerts, Cadence: EveryDuration(time.Minute)},
		{Name: "uptime", Function: FnUptime, Cadence: EveryDuration(30 * time.Minute)},
		{Name: "cleanup", Function: FnCleanup, Cadence: EveryDuration(time.Hour)},
		{Name: "drift", Function: FnDrift, Cadence: EveryDuration(time.Hour)},
		{Name: "reminders", Function: FnReminders, Cadence: Daily(9, 0)},
		{Name: "certexpiry", Function: FnCertExpiry, Cadence: Daily(6, 0)},
	}
}

// JobOf returns the job run by function fn.
func JobOf(fn string) (Job, bool) {
	for _, j := range Jobs() {
		if j.Function == fn {
			return j, true
		}
	}
	return Job{}, false
}
