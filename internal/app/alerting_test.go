package app_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/testenv"
)

// alerting: rules, windows, alerts (issue 13)

type ruleView struct {
	ID                string    `json:"id"`
	Name              string    `json:"name"`
	Kind              string    `json:"kind"`
	Metric            *string   `json:"metric"`
	Threshold         *float64  `json:"threshold"`
	RecoveryThreshold *float64  `json:"recovery_threshold"`
	GraceSeconds      *int      `json:"grace_seconds"`
	Days              *int      `json:"days"`
	Severity          string    `json:"severity"`
	GroupID           *string   `json:"group_id"`
	Enabled           bool      `json:"enabled"`
	IsDefault         bool      `json:"is_default"`
	FiringAlerts      int       `json:"firing_alerts"`
	CreatedAt         time.Time `json:"created_at"`
}

type alertView struct {
	ID   string `json:"id"`
	Rule struct {
		ID   *string `json:"id"`
		Name string  `json:"name"`
		Kind *string `json:"kind"`
	} `json:"rule"`
	Machine *struct {
		ID, Hostname string
	} `json:"machine"`
	State        string          `json:"state"`
	Severity     string          `json:"severity"`
	ResolvedAt   *time.Time      `json:"resolved_at"`
	Details      json.RawMessage `json:"details"`
	Acknowledged *struct {
		At time.Time `json:"at"`
		By *struct {
			ID, Email string
		} `json:"by"`
		Comment *string `json:"comment"`
	} `json:"acknowledged"`
}

type alertPage struct {
	Alerts     []alertView `json:"alerts"`
	NextCursor *string     `json:"next_cursor"`
}

// episode plants an alert_rule_history row as the evaluation job writes it.
func episode(t *testing.T, s *stack, client, machine, rule, state, severity string, started time.Time) string {
	t.Helper()
	var triggered, resolved *time.Time
	if state != "pending" {
		x := started.Add(time.Minute)
		triggered = &x
	}
	if state == "resolved" {
		x := started.Add(10 * time.Minute)
		resolved = &x
	}
	var id string
	if err := s.d.Pool.QueryRow(context.Background(), `
		INSERT INTO alert_rule_history (client_id, machine_id, rule_id, rule_name, metric_type, severity, state, started_at,
			triggered_at, resolved_at, last_value, threshold, details)
		VALUES ($1, $2, NULLIF($3, '')::uuid, COALESCE((SELECT name FROM alert_rules WHERE id = NULLIF($3, '')::uuid), 'gone'), 'cpu',
			$4, $5, $6, $7, $8, 97.5, 90,
			'{"seen":"cpu"}') RETURNING id`,
		client, machine, rule, severity, state, started, triggered, resolved).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// fields decodes an error answer's fields.
func fields(t *testing.T, body string) map[string]string {
	t.Helper()
	var e struct {
		Error struct {
			Fields map[string]string `json:"fields"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return e.Error.Fields
}

// A client created through POST /api/admin/clients has the default rules; its admin edits
// and disables them, its users read them and may not write.
func TestAlertingDefaultRulesOfANewClient(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	platform := s.bearer(s.account("", principal.RolePlatformAdmin))
	var c struct{ ID string }
	if code, raw := s.api("POST", "/api/admin/clients", platform, `{"name":"Acme MSP","license_tier":"Pro"}`, &c); code != 201 {
		t.Fatalf("create client: %d %s", code, raw)
	}
	admin, user := s.bearer(s.account(c.ID, principal.RoleAdmin)), s.bearer(s.account(c.ID, principal.RoleUser))
	var list struct{ Rules []ruleView }
	if code, raw := s.api("GET", "/api/alert-rules", user, "", &list); code != 200 || len(list.Rules) != 4 {
		t.Fatalf("defaults: %d %s", code, raw)
	}
	byKind := map[string]ruleView{}
	for _, r := range list.Rules {
		if !r.IsDefault || !r.Enabled || !r.CreatedAt.Equal(s.clock.Now()) {
			t.Errorf("default rule %+v", r)
		}
		byKind[r.Kind] = r
	}
	if r := byKind["offline"]; r.GraceSeconds == nil || *r.GraceSeconds != 300 || r.Severity != "critical" {
		t.Errorf("offline default: %+v", r)
	}
	if r := byKind["metric"]; r.Metric == nil || *r.Metric != "disk" || *r.Threshold != 90 || *r.RecoveryThreshold != 85 {
		t.Errorf("disk default: %+v", r)
	}
	if r := byKind["certificate"]; r.Days == nil || *r.Days != 14 {
		t.Errorf("certificate default: %+v", r)
	}
	if _, ok := byKind["smart"]; !ok {
		t.Errorf("no SMART default: %+v", list.Rules)
	}
	disk, offline := byKind["metric"].ID, byKind["offline"].ID
	if code, raw := s.api("PATCH", "/api/alert-rules/"+disk, user, `{"threshold":95}`, nil); code != 403 {
		t.Fatalf("a user edited a rule: %d %s", code, raw)
	}
	var r ruleView
	if code, raw := s.api("PATCH", "/api/alert-rules/"+disk, admin, `{"threshold":95,"recovery_threshold":92}`, &r); code != 200 ||
		*r.Threshold != 95 || *r.RecoveryThreshold != 92 || !r.IsDefault {
		t.Fatalf("edit the disk default: %d %s", code, raw)
	}
	if code, raw := s.api("PATCH", "/api/alert-rules/"+offline, admin, `{"enabled":false}`, &r); code != 200 || r.Enabled {
		t.Fatalf("disable the offline default: %d %s", code, raw)
	}
	var activity struct{ Entries []struct{ Action string } }
	if code, raw := s.api("GET", "/api/activity?action=alert_rule_updated", admin, "", &activity); code != 200 || len(activity.Entries) != 2 {
		t.Fatalf("audit: %d %s", code, raw)
	}
}

// Rules: create, read, change, delete through the guard; every bad body is a 400 naming
// the member and changes nothing; changing what a rule watches ends its open alerts.
func TestAlertRulesThroughTheGuard(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	client, other := testenv.Client(t, s.d.Pool, "Pro"), testenv.Client(t, s.d.Pool, "Pro")
	admin, user := s.bearer(s.account(client, principal.RoleAdmin)), s.bearer(s.account(client, principal.RoleUser))
	m1, m2 := testenv.Machine(t, s.d.Pool, client, "web-1"), testenv.Machine(t, s.d.Pool, client, "web-2")
	otherMachine := testenv.Machine(t, s.d.Pool, other, "theirs-1")
	var group, otherGroup struct{ ID string }
	if code, raw := s.api("POST", "/api/groups", admin, `{"name":"Servers"}`, &group); code != 201 {
		t.Fatalf("group: %d %s", code, raw)
	}
	if code, raw := s.api("POST", "/api/groups", s.bearer(s.account(other, principal.RoleAdmin)), `{"name":"Theirs"}`, &otherGroup); code != 201 {
		t.Fatalf("group: %d %s", code, raw)
	}

	var rule ruleView
	code, raw := s.api("POST", "/api/alert-rules", admin,
		`{"name":" CPU hot ","kind":"metric","metric":"cpu","threshold":90,"recovery_threshold":80,"pending_seconds":300,"group_id":"`+group.ID+`"}`, &rule)
	if code != 201 || rule.Name != "CPU hot" || rule.Severity != "warning" || !rule.Enabled || rule.IsDefault || rule.GroupID == nil || *rule.GroupID != group.ID {
		t.Fatalf("create: %d %s", code, raw)
	}
	if code, raw := s.api("POST", "/api/alert-rules", user, `{"name":"x","kind":"smart"}`, nil); code != 403 {
		t.Fatalf("a user created a rule: %d %s", code, raw)
	}
	if code, raw := s.api("GET", "/api/alert-rules/"+rule.ID, user, "", nil); code != 200 || !strings.Contains(raw, `"pending_seconds":300`) {
		t.Fatalf("get as a user: %d %s", code, raw)
	}
	rules := func() int { return count(t, s, `SELECT count(*) FROM alert_rules WHERE client_id = $1`, client) }
	before := rules()

	long := strings.Repeat("x", 201)
	for _, c := range []struct{ body, field string }{
		{`{"kind":"smart"}`, "name"},
		{`{"name":"   ","kind":"smart"}`, "name"},
		{`{"name":"x"}`, "kind"},
		{`{"name":"x","kind":"banana"}`, "kind"},
		{`{"name":"x","kind":"metric"}`, "metric"},
		{`{"name":"x","kind":"metric","metric":"cpu"}`, "threshold"},
		{`{"name":"x","kind":"metric","metric":"gpu","threshold":1}`, "metric"},
		{`{"name":"x","kind":"metric","metric":"cpu","threshold":101}`, "threshold"},
		{`{"name":"x","kind":"metric","metric":"cpu","threshold":-1}`, "threshold"},
		{`{"name":"x","kind":"metric","metric":"cpu_temp","threshold":151}`, "threshold"},
		{`{"name":"x","kind":"metric","metric":"latency","threshold":-5}`, "threshold"},
		{`{"name":"x","kind":"metric","metric":"disk","threshold":80,"recovery_threshold":85}`, "recovery_threshold"},
		{`{"name":"x","kind":"metric","metric":"cpu","threshold":"90"}`, "threshold"},
		{`{"name":"x","kind":"offline"}`, "grace_seconds"},
		{`{"name":"x","kind":"offline","grace_seconds":86401}`, "grace_seconds"},
		{`{"name":"x","kind":"offline","grace_seconds":60,"threshold":5}`, "threshold"},
		{`{"name":"x","kind":"smart","metric":"cpu"}`, "metric"},
		{`{"name":"x","kind":"service"}`, "service_pattern"},
		{`{"name":"x","kind":"service","service_pattern":"` + long + `"}`, "service_pattern"},
		{`{"name":"x","kind":"updates"}`, "days"},
		{`{"name":"x","kind":"reboot","days":366}`, "days"},
		{`{"name":"x","kind":"certificate","days":1.5}`, "days"},
		{`{"name":"x","kind":"smart","severity":"loud"}`, "severity"},
		{`{"name":"x","kind":"smart","pending_seconds":-1}`, "pending_seconds"},
		{`{"name":"x","kind":"smart","min_firing_seconds":86401}`, "min_firing_seconds"},
		{`{"name":"x","kind":"smart","pending_seconds":null}`, "pending_seconds"},
		{`{"name":"x","kind":"smart","enabled":"yes"}`, "enabled"},
		{`{"name":"x","kind":"smart","group_id":"nope"}`, "group_id"},
		{`{"name":"x","kind":"smart","group_id":"` + otherGroup.ID + `"}`, "group_id"},
		{`{"name":"x","kind":"smart","machine_id":"` + otherMachine + `"}`, "machine_id"},
		{`{"name":"x","kind":"smart","machine_id":"00000000-0000-0000-0000-000000000001"}`, "machine_id"},
		{`{"name":"x","kind":"smart","machine_id":"` + m1 + `","group_id":"` + group.ID + `"}`, "group_id"},
		{`{"name":"x","kind":"smart","colour":"red"}`, ""},
		{`[1]`, ""},
	} {
		code, raw := s.api("POST", "/api/alert-rules", admin, c.body, nil)
		if code != 400 {
			t.Errorf("POST %s: %d %s, want 400", c.body, code, raw)
			continue
		}
		if c.field != "" && fields(t, raw)[c.field] == "" {
			t.Errorf("POST %s: %s does not name %s", c.body, raw, c.field)
		}
	}
	for _, c := range []struct{ body, field string }{
		{`{}`, ""},
		{`{"recovery_threshold":95}`, "recovery_threshold"},
		{`{"kind":"service"}`, "service_pattern"},
		{`{"name":null}`, "name"},
		{`{"group_id":"` + otherGroup.ID + `"}`, "group_id"},
		{`{"machine_id":"` + m1 + `"}`, "machine_id"},
	} {
		code, raw := s.api("PATCH", "/api/alert-rules/"+rule.ID, admin, c.body, nil)
		if code != 400 || (c.field != "" && fields(t, raw)[c.field] == "") {
			t.Errorf("PATCH %s: %d %s, want 400 naming %q", c.body, code, raw, c.field)
		}
	}
	if n := rules(); n != before {
		t.Fatalf("bad requests changed the rules: %d, then %d", before, n)
	}
	if n := count(t, s, `SELECT count(*) FROM alert_rules WHERE id = $1 AND threshold = 90 AND recovery_threshold = 80 AND scope_group_id = $2`,
		rule.ID, group.ID); n != 1 {
		t.Fatal("a refused PATCH changed the rule")
	}

	// Open episodes: a threshold change keeps them; a metric change ends them.
	start := s.clock.Now().Add(-time.Hour)
	firing := episode(t, s, client, m1, rule.ID, "firing", "warning", start)
	pending := episode(t, s, client, m2, rule.ID, "pending", "warning", start)
	if code, raw := s.api("PATCH", "/api/alert-rules/"+rule.ID, admin, `{"threshold":85}`, &rule); code != 200 || rule.FiringAlerts != 1 {
		t.Fatalf("threshold: %d %s", code, raw)
	}
	if n := count(t, s, `SELECT count(*) FROM alert_rule_history WHERE rule_id = $1 AND resolved_at IS NULL`, rule.ID); n != 2 {
		t.Fatalf("a threshold change closed episodes: %d open", n)
	}
	s.clock.Advance(time.Minute)
	if code, raw := s.api("PATCH", "/api/alert-rules/"+rule.ID, admin, `{"metric":"ram"}`, &rule); code != 200 || rule.FiringAlerts != 0 {
		t.Fatalf("metric: %d %s", code, raw)
	}
	var a alertView
	if code, raw := s.api("GET", "/api/alerts/"+firing, user, "", &a); code != 200 || a.State != "resolved" || a.ResolvedAt == nil ||
		!a.ResolvedAt.Equal(s.clock.Now()) || !strings.Contains(string(a.Details), `"closed_by": "rule_updated"`) && !strings.Contains(string(a.Details), `"closed_by":"rule_updated"`) {
		t.Fatalf("firing episode after the metric changed: %d %s", code, raw)
	}
	if code, _ := s.api("GET", "/api/alerts/"+pending, user, "", nil); code != 404 {
		t.Fatalf("the pending episode survived the metric change: %d", code)
	}
	// Kind change: the members of the former kind go.
	if code, raw := s.api("PATCH", "/api/alert-rules/"+rule.ID, admin, `{"kind":"offline","grace_seconds":120,"group_id":null,"machine_id":"`+m1+`"}`, &rule); code != 200 ||
		rule.Metric != nil || rule.Threshold != nil || rule.RecoveryThreshold != nil || *rule.GraceSeconds != 120 || rule.GroupID != nil {
		t.Fatalf("kind change: %d %s", code, raw)
	}

	// Delete: firing alerts resolved, the history keeps them without the rule.
	again := episode(t, s, client, m1, rule.ID, "firing", "critical", s.clock.Now().Add(-time.Minute))
	if code, _ := s.api("DELETE", "/api/alert-rules/"+rule.ID, user, "", nil); code != 403 {
		t.Fatalf("a user deleted a rule: %d", code)
	}
	if code, raw := s.api("DELETE", "/api/alert-rules/"+rule.ID, admin, "", nil); code != 204 {
		t.Fatalf("delete: %d %s", code, raw)
	}
	if code, raw := s.api("GET", "/api/alerts/"+again, user, "", &a); code != 200 || a.State != "resolved" || a.Rule.ID != nil ||
		a.Rule.Name != "CPU hot" || a.Rule.Kind != nil {
		t.Fatalf("episode of a deleted rule: %d %s", code, raw)
	}
	if code, _ := s.api("GET", "/api/alert-rules/"+rule.ID, admin, "", nil); code != 404 {
		t.Fatalf("deleted rule still there: %d", code)
	}
	if code, _ := s.api("DELETE", "/api/alert-rules/"+rule.ID, admin, "", nil); code != 404 {
		t.Fatalf("second delete: %d", code)
	}
	for _, action := range []string{"alert_rule_created", "alert_rule_updated", "alert_rule_deleted"} {
		if n := count(t, s, `SELECT count(*) FROM activity_logs WHERE client_id = $1 AND action = $2 AND details->>'rule_id' = $3`,
			client, action, rule.ID); n == 0 {
			t.Errorf("no %s audit entry", action)
		}
	}
	if n := count(t, s, `SELECT count(*) FROM activity_logs WHERE action = 'alert_rule_deleted' AND (details->>'alerts_resolved')::int = 1`); n != 1 {
		t.Errorf("the delete's audit entry does not count the resolved alert")
	}
}

// Maintenance windows: active now and next start at the application's clock, validation,
// client admins write, audit.
func TestMaintenanceWindowsThroughTheGuard(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	client, other := testenv.Client(t, s.d.Pool, "Pro"), testenv.Client(t, s.d.Pool, "Pro")
	admin, user := s.bearer(s.account(client, principal.RoleAdmin)), s.bearer(s.account(client, principal.RoleUser))
	m := testenv.Machine(t, s.d.Pool, client, "db-1")
	theirs := testenv.Machine(t, s.d.Pool, other, "theirs-1")
	now := s.clock.Now() // 2026-05-04 08:00 UTC
	type window struct {
		ID          string     `json:"id"`
		Active      bool       `json:"active"`
		NextStartAt *time.Time `json:"next_start_at"`
		Recurrence  string     `json:"recurrence"`
		MachineID   *string    `json:"machine_id"`
	}
	at := func(t time.Time) string { return t.Format(time.RFC3339) }
	var once, daily, over window
	if code, raw := s.api("POST", "/api/maintenance-windows", admin,
		`{"name":"Patch night","starts_at":"`+at(now.Add(-10*time.Minute))+`","duration_seconds":3600,"machine_id":"`+m+`"}`, &once); code != 201 ||
		!once.Active || once.NextStartAt != nil || once.Recurrence != "none" || once.MachineID == nil {
		t.Fatalf("once: %d %s", code, raw)
	}
	if code, raw := s.api("POST", "/api/maintenance-windows", admin,
		`{"name":"Backups","starts_at":"2026-04-01T07:30:00+00:00","duration_seconds":3600,"recurrence":"daily"}`, &daily); code != 201 ||
		!daily.Active || daily.NextStartAt == nil || !daily.NextStartAt.Equal(time.Date(2026, 5, 5, 7, 30, 0, 0, time.UTC)) {
		t.Fatalf("daily: %d %s", code, raw)
	}
	if code, raw := s.api("POST", "/api/maintenance-windows", admin,
		`{"name":"Old","starts_at":"2026-01-05T08:00:00Z","duration_seconds":7200,"recurrence":"weekly","recurrence_until":"2026-02-01T00:00:00Z"}`, &over); code != 201 ||
		over.Active || over.NextStartAt != nil {
		t.Fatalf("over: %d %s", code, raw)
	}
	if code, _ := s.api("POST", "/api/maintenance-windows", user, `{"name":"x","starts_at":"2026-05-05T00:00:00Z","duration_seconds":60}`, nil); code != 403 {
		t.Fatalf("a user created a window: %d", code)
	}
	windows := func() int {
		return count(t, s, `SELECT count(*) FROM maintenance_windows WHERE client_id = $1`, client)
	}
	before := windows()
	ok := `"name":"x","starts_at":"2026-05-05T00:00:00Z"`
	for _, c := range []struct{ body, field string }{
		{`{"starts_at":"2026-05-05T00:00:00Z","duration_seconds":60}`, "name"},
		{`{"name":"x","duration_seconds":60}`, "starts_at"},
		{`{"name":"x","starts_at":"tomorrow","duration_seconds":60}`, "starts_at"},
		{`{` + ok + `}`, "duration_seconds"},
		{`{` + ok + `,"duration_seconds":59}`, "duration_seconds"},
		{`{` + ok + `,"duration_seconds":604801}`, "duration_seconds"},
		{`{` + ok + `,"duration_seconds":90000,"recurrence":"daily"}`, "duration_seconds"},
		{`{` + ok + `,"duration_seconds":60,"recurrence":"monthly"}`, "recurrence"},
		{`{` + ok + `,"duration_seconds":60,"recurrence_until":"2026-06-01T00:00:00Z"}`, "recurrence_until"},
		{`{` + ok + `,"duration_seconds":60,"recurrence":"daily","recurrence_until":"2026-05-04T00:00:00Z"}`, "recurrence_until"},
		{`{` + ok + `,"duration_seconds":60,"machine_id":"` + theirs + `"}`, "machine_id"},
		{`{` + ok + `,"duration_seconds":60,"group_id":"` + theirs + `"}`, "group_id"},
		{`{` + ok + `,"duration_seconds":60,"machine_id":7}`, "machine_id"},
		{`{` + ok + `,"duration_seconds":"60"}`, "duration_seconds"},
	} {
		code, raw := s.api("POST", "/api/maintenance-windows", admin, c.body, nil)
		if code != 400 || fields(t, raw)[c.field] == "" {
			t.Errorf("POST %s: %d %s, want 400 naming %s", c.body, code, raw, c.field)
		}
	}
	for _, body := range []string{`{}`, `{"recurrence":"weekly","duration_seconds":700000}`, `{"recurrence_until":"2026-06-01T00:00:00Z"}`} {
		if code, raw := s.api("PATCH", "/api/maintenance-windows/"+once.ID, admin, body, nil); code != 400 {
			t.Errorf("PATCH %s: %d %s", body, code, raw)
		}
	}
	if n := windows(); n != before {
		t.Fatalf("bad requests changed the windows: %d then %d", before, n)
	}
	var w window
	// No longer daily: its only occurrence (1 April) is over.
	if code, raw := s.api("PATCH", "/api/maintenance-windows/"+daily.ID, admin, `{"recurrence":"none"}`, &w); code != 200 || w.Active || w.NextStartAt != nil {
		t.Fatalf("patch: %d %s", code, raw)
	}
	var list struct{ Windows []window }
	if code, raw := s.api("GET", "/api/maintenance-windows", user, "", &list); code != 200 || len(list.Windows) != 3 {
		t.Fatalf("list: %d %s", code, raw)
	}
	// No longer weekly: the end of the recurrence goes with it.
	if code, raw := s.api("PATCH", "/api/maintenance-windows/"+over.ID, admin, `{"recurrence":"none"}`, nil); code != 200 ||
		!strings.Contains(raw, `"recurrence_until":null`) {
		t.Fatalf("patch recurrence: %d %s", code, raw)
	}
	if code, _ := s.api("DELETE", "/api/maintenance-windows/"+over.ID, user, "", nil); code != 403 {
		t.Fatalf("a user deleted a window: %d", code)
	}
	if code, _ := s.api("DELETE", "/api/maintenance-windows/"+over.ID, admin, "", nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := s.api("GET", "/api/maintenance-windows/"+over.ID, admin, "", nil); code != 404 {
		t.Fatalf("deleted window: %d", code)
	}
	for _, action := range []string{"maintenance_window_created", "maintenance_window_updated", "maintenance_window_deleted"} {
		if n := count(t, s, `SELECT count(*) FROM activity_logs WHERE client_id = $1 AND action = $2`, client, action); n == 0 {
			t.Errorf("no %s audit entry", action)
		}
	}
}

// Alerts: firing by default, filters, cursor paging, acknowledgement by any user, and the
// machine list and details showing the firing alerts.
func TestAlertsListAcknowledgeAndMachines(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	client, other := testenv.Client(t, s.d.Pool, "Pro"), testenv.Client(t, s.d.Pool, "Pro")
	acct := s.account(client, principal.RoleUser)
	user := s.bearer(acct)
	m1, m2 := testenv.Machine(t, s.d.Pool, client, "web-1"), testenv.Machine(t, s.d.Pool, client, "web-2")
	theirs := testenv.Machine(t, s.d.Pool, other, "theirs-1")
	var rule string
	if err := s.d.Pool.QueryRow(context.Background(), `SELECT id FROM alert_rules WHERE client_id = $1 AND kind = 'offline'`, client).Scan(&rule); err != nil {
		t.Fatal(err)
	}
	var otherRule string
	if err := s.d.Pool.QueryRow(context.Background(), `SELECT id FROM alert_rules WHERE client_id = $1 AND kind = 'offline'`, other).Scan(&otherRule); err != nil {
		t.Fatal(err)
	}
	now := s.clock.Now()
	critical := episode(t, s, client, m1, rule, "firing", "critical", now.Add(-10*time.Minute))
	warning := episode(t, s, client, m2, rule, "firing", "warning", now.Add(-20*time.Minute))
	pending := episode(t, s, client, m1, "", "pending", "info", now.Add(-5*time.Minute))
	resolved := episode(t, s, client, m1, rule, "resolved", "critical", now.Add(-24*time.Hour))
	episode(t, s, other, theirs, otherRule, "firing", "critical", now.Add(-time.Minute))

	list := func(query string) alertPage {
		t.Helper()
		var p alertPage
		if code, raw := s.api("GET", "/api/alerts"+query, user, "", &p); code != 200 {
			t.Fatalf("GET /api/alerts%s: %d %s", query, code, raw)
		}
		return p
	}
	ids := func(p alertPage) string {
		var out []string
		for _, a := range p.Alerts {
			out = append(out, a.ID)
		}
		return strings.Join(out, ",")
	}
	if got := ids(list("")); got != critical+","+warning {
		t.Fatalf("default (firing, newest first): %s", got)
	}
	first := list("?limit=1")
	if ids(first) != critical || first.NextCursor == nil {
		t.Fatalf("page 1: %+v", first)
	}
	if second := list("?limit=1&cursor=" + *first.NextCursor); ids(second) != warning || second.NextCursor != nil {
		t.Fatalf("page 2: %+v", second)
	}
	for query, want := range map[string]string{
		"?state=open":                     pending + "," + critical + "," + warning,
		"?state=all&machine_id=" + m1:     pending + "," + critical + "," + resolved,
		"?state=pending":                  pending,
		"?severity=critical":              critical,
		"?machine_id=" + m2:               warning,
		"?rule_id=" + rule + "&state=all": critical + "," + warning + "," + resolved,
		"?acknowledged=true":              "",
		"?state=resolved&from=" + url.QueryEscape(now.Add(-48*time.Hour).Format(time.RFC3339)) + "&to=" + url.QueryEscape(now.Add(-time.Hour).Format(time.RFC3339)): resolved,
		"?state=resolved&from=" + url.QueryEscape(now.Add(-time.Hour).Format(time.RFC3339)):                                                                         "",
		"?machine_id=" + theirs: "",
	} {
		if got := ids(list(query)); got != want {
			t.Errorf("GET /api/alerts%s: %s, want %s", query, got, want)
		}
	}
	for query, field := range map[string]string{
		"?state=bogus":             "state",
		"?state=firing&state=open": "state",
		"?severity=loud":           "severity",
		"?machine_id=nope":         "machine_id",
		"?acknowledged=yes":        "acknowledged",
		"?limit=0":                 "limit",
		"?limit=201":               "limit",
		"?from=yesterday":          "from",
		"?cursor=garbage":          "cursor",
		"?sort=started_at":         "sort",
		"?from=2026-05-04T00:00:00Z&to=2026-05-03T00:00:00Z": "to",
	} {
		code, raw := s.api("GET", "/api/alerts"+query, user, "", nil)
		if code != 400 || fields(t, raw)[field] == "" {
			t.Errorf("GET /api/alerts%s: %d %s, want 400 naming %s", query, code, raw, field)
		}
	}

	// The machine list and details show the firing alerts.
	var machines struct {
		Machines []struct {
			ID     string `json:"id"`
			Alerts struct {
				Firing   int     `json:"firing"`
				Severity *string `json:"severity"`
			} `json:"alerts"`
		} `json:"machines"`
	}
	if code, raw := s.api("GET", "/api/machines?sort=hostname", user, "", &machines); code != 200 || len(machines.Machines) != 2 ||
		machines.Machines[0].Alerts.Firing != 1 || *machines.Machines[0].Alerts.Severity != "critical" ||
		machines.Machines[1].Alerts.Firing != 1 || *machines.Machines[1].Alerts.Severity != "warning" {
		t.Fatalf("machine list: %d %s", code, raw)
	}
	for query, want := range map[string]int{"?alerts=firing": 2, "?alerts=none": 0} {
		var page struct{ Total int }
		if code, raw := s.api("GET", "/api/machines"+query, user, "", &page); code != 200 || page.Total != want {
			t.Errorf("GET /api/machines%s: %d %s, want %d machines", query, code, raw, want)
		}
	}
	if code, raw := s.api("GET", "/api/machines?alerts=some", user, "", nil); code != 400 || fields(t, raw)["alerts"] == "" {
		t.Errorf("alerts=some: %d %s", code, raw)
	}
	var details struct {
		Alerts []struct {
			ID       string `json:"id"`
			RuleName string `json:"rule_name"`
		} `json:"alerts"`
	}
	if code, raw := s.api("GET", "/api/machines/"+m1, user, "", &details); code != 200 || len(details.Alerts) != 1 ||
		details.Alerts[0].ID != critical || details.Alerts[0].RuleName != "Machine offline" {
		t.Fatalf("machine details: %d %s", code, raw)
	}

	// Acknowledgement: any user, with a comment; again replaces it; resolved is 409.
	var a alertView
	s.clock.Advance(time.Minute)
	if code, raw := s.api("POST", "/api/alerts/"+critical+"/acknowledge", user, `{"comment":"  on it\nrebooting  "}`, &a); code != 200 ||
		a.Acknowledged == nil || !a.Acknowledged.At.Equal(s.clock.Now()) || a.Acknowledged.By == nil || a.Acknowledged.By.Email != acct.Email ||
		a.Acknowledged.Comment == nil || *a.Acknowledged.Comment != "on it\nrebooting" {
		t.Fatalf("acknowledge: %d %s", code, raw)
	}
	if got := ids(list("?acknowledged=true")); got != critical {
		t.Fatalf("acknowledged filter: %s", got)
	}
	if code, raw := s.api("POST", "/api/alerts/"+critical+"/acknowledge", user, `{"comment":"`+strings.Repeat("é", 1001)+`"}`, nil); code != 400 || fields(t, raw)["comment"] == "" {
		t.Fatalf("long comment: %d %s", code, raw)
	}
	for _, body := range []string{`{"comment":5}`, `{"note":"x"}`, `[]`} {
		if code, raw := s.api("POST", "/api/alerts/"+critical+"/acknowledge", user, body, nil); code != 400 {
			t.Errorf("acknowledge %s: %d %s", body, code, raw)
		}
	}
	if n := count(t, s, `SELECT count(*) FROM alert_rule_history WHERE id = $1 AND ack_comment = 'on it'||chr(10)||'rebooting'`, critical); n != 1 {
		t.Fatal("a refused acknowledgement changed the alert")
	}
	if code, raw := s.api("POST", "/api/alerts/"+critical+"/acknowledge", user, "", &a); code != 200 || a.Acknowledged.Comment != nil {
		t.Fatalf("acknowledge again without a body: %d %s", code, raw)
	}
	if code, raw := s.api("POST", "/api/alerts/"+resolved+"/acknowledge", user, `{}`, nil); code != 409 {
		t.Fatalf("acknowledge a resolved alert: %d %s", code, raw)
	}
	if code, _ := s.api("POST", "/api/alerts/not-an-id/acknowledge", user, `{}`, nil); code != 404 {
		t.Fatalf("malformed id: %d", code)
	}
	if n := count(t, s, `SELECT count(*) FROM activity_logs WHERE client_id = $1 AND action = 'alert_acknowledged' AND machine_id = $2`, client, m1); n != 2 {
		t.Fatalf("audit: %d acknowledgement entries", n)
	}
}
