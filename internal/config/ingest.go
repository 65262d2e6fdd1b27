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
}

// Defaults of Ingest.
const (
	DefaultGroupMax     = 256
	DefaultCommitters   = 4
	DefaultMachineLimit = 10
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
	if in.MachineLimit, err = MachineLimit(getenv); err != nil {
		return Ingest{}, err
	}
	return in, nil
}

// MachineLimit reads HEARTBEAT_MACHINE_LIMIT (the heartbeat function reads only this).
func MachineLimit(getenv func(string) string) (int, error) {
	return intIn(getenv, "HEARTBEAT_MACHINE_LIMIT", DefaultMachineLimit, 0, 100000)
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
