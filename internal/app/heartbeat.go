package app

import "github.com/optralis/optralis/internal/heartbeat"

// HeartbeatService is the heartbeat ingest, built once per process (it holds the rate
// limiter's in-process fallback and the client cache).
func (d *Deps) HeartbeatService() *heartbeat.Service {
	d.heartbeatOnce.Do(func() {
		if d.Heartbeat == nil {
			d.Heartbeat = heartbeat.New(heartbeat.Deps{Pool: d.Pool, Redis: d.Redis, Clock: d.Clock, Logger: d.Logger})
		}
	})
	return d.Heartbeat
}
