package config

import (
	"strings"
	"testing"
)

func TestLoadIngest(t *testing.T) {
	in, err := LoadIngest(func(string) string { return "" })
	if err != nil || in != (Ingest{GroupCommit: true, MaxGroup: DefaultGroupMax, Committers: DefaultCommitters,
		MachineLimit: DefaultMachineLimit, IPLimit: DefaultIPLimit}) {
		t.Fatalf("defaults: %+v %v", in, err)
	}
	env := map[string]string{"HEARTBEAT_GROUP_COMMIT": "OFF", "HEARTBEAT_GROUP_MAX": "64", "HEARTBEAT_COMMITTERS": "2",
		"HEARTBEAT_MACHINE_LIMIT": "0", "HEARTBEAT_IP_LIMIT": "100000"}
	in, err = LoadIngest(func(k string) string { return env[k] })
	if err != nil || in != (Ingest{GroupCommit: false, MaxGroup: 64, Committers: 2, MachineLimit: 0, IPLimit: 100000}) {
		t.Fatalf("set: %+v %v", in, err)
	}
	for name, bad := range map[string]string{"HEARTBEAT_GROUP_COMMIT": "yes", "HEARTBEAT_GROUP_MAX": "0",
		"HEARTBEAT_COMMITTERS": "65", "HEARTBEAT_MACHINE_LIMIT": "-1", "HEARTBEAT_IP_LIMIT": "0"} {
		_, err := LoadIngest(func(k string) string {
			if k == name {
				return bad
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: %v, want an error naming it", name, bad, err)
		}
	}
}
