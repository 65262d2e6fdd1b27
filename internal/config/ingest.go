package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Ingest is how a long-running server writes heartbeats (issue 14).
type Ingest struct {
	// GroupCommit (HEARTBEAT_GROUP_COMMIT=on|off, default on) writes concurrent
	// heartbeats in groups; off writes each in its own transaction.
	GroupCommit bool
	// MaxGroup (HEARTBEAT_GROUP_MAX, 1–10000, default 256) bounds a group.
	MaxGroup int
	// Committers (HEARTBEAT_COMMITTERS, 1–64, default 4) is how many groups may be in
	// flight at once.
	Committers int
	// MachineLimit (HEARTBEAT_MACHINE_LIMIT, 0–100000 a minute, default 10; 0: none) is
	// how many heartbeats a minute one machine may send.
	MachineLimit int
	// IPLimit (HEARTBEAT_IP_LIMIT, 1–1000000000 a minute, default 3000, the spec's) is how
	// many heartbeats a minute one source address may send.
	IPLimit int
}

// Defaults of Ingest.
const (
	DefaultGroupMax     = 256
	DefaultCommitters   = 4
	DefaultMachineLimit = 10
	DefaultIPLimit      = 3000
)

// LoadIngest reads the heartbeat ingest settings.
func LoadIngest(getenv func(string) string) (Ingest, error) {
	in := Ingest{GroupCommit: true}
	switch v := strings.ToLower(strings.TrimSpace(getenv("HEARTBEAT_GROUP_COMMIT"))); v {
	case "", "on":
	case "off":
		in.GroupCommit = false
	default:
		return Ingest{}, fmt.Errorf("HEARTBEAT_GROUP_COMMIT must be on or off, not %q", v)
	}
	var err error
	if in.MaxGroup, err = intIn(getenv, "HEARTBEAT_GROUP_MAX", DefaultGroupMax, 1, 10000); err != nil {
		return Ingest{}, err
	}
	if in.Committers, err = intIn(getenv, "HEARTBEAT_COMMITTERS", DefaultCommitters, 1, 64); err != nil {
		return Ingest{}, err
	}
	if in.MachineLimit, in.IPLimit, err = Limits(getenv); err != nil {
		return Ingest{}, err
	}
	return in, nil
}

// Limits reads HEARTBEAT_MACHINE_LIMIT and HEARTBEAT_IP_LIMIT (what the heartbeat
// function reads of Ingest: on Lambda each heartbeat is written on its own).
func Limits(getenv func(string) string) (machine, ip int, err error) {
	if machine, err = intIn(getenv, "HEARTBEAT_MACHINE_LIMIT", DefaultMachineLimit, 0, 100000); err != nil {
		return 0, 0, err
	}
	if ip, err = intIn(getenv, "HEARTBEAT_IP_LIMIT", DefaultIPLimit, 1, 1000000000); err != nil {
		return 0, 0, err
	}
	return machine, ip, nil
}

func intIn(getenv func(string) string, name string, def, lo, hi int) (int, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s must be a whole number from %d to %d, not %q", name, lo, hi, v)
	}
	return n, nil
}
