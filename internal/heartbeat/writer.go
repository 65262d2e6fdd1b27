package heartbeat

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/db"
)

// DefaultSyncEvery is how often the writer re-syncs a machine's certificate columns when
// the machine keeps presenting the same certificate: issuance and revocation write them
// themselves, so the heartbeat's sync is a safety net, not a per-heartbeat statement.
const DefaultSyncEvery = 10 * time.Minute

// DefaultTouchEvery is how stale machines.last_seen may get before a heartbeat that
// changes nothing else (a retry of an already-recorded one) rewrites it.
const DefaultTouchEvery = 30 * time.Second

// WriterConfig is what the group writer needs.
type WriterConfig struct {
	Pool   *pgxpool.Pool
	Logger *slog.Logger
	// LicenceGraceDays is as in Deps: 0 DefaultLicenceGraceDays, negative none.
	LicenceGraceDays int
	// SyncEvery: 0 DefaultSyncEvery. TouchEvery: 0 DefaultTouchEvery.
	SyncEvery, TouchEvery time.Duration
}

// Writer writes groups of heartbeats: one transaction and one statement per table for the
// whole group, in one database round trip (a pgx batch is one implicit transaction). It
// is safe for concurrent use and long-lived (it remembers which certificates it synced).
type Writer struct {
	c WriterConfig

	mu     sync.Mutex
	synced map[string]syncMark // machine id → the last certificate sync

	statements, groups, items atomic.Int64
}

type syncMark struct {
	serial string
	at     time.Time
}

// NewWriter returns the writer.
func NewWriter(c WriterConfig) *Writer {
	if c.LicenceGraceDays == 0 {
		c.LicenceGraceDays = DefaultLicenceGraceDays
	} else if c.LicenceGraceDays < 0 {
		c.LicenceGraceDays = 0
	}
	if c.SyncEvery == 0 {
		c.SyncEvery = DefaultSyncEvery
	}
	if c.TouchEvery == 0 {
		c.TouchEvery = DefaultTouchEvery
	}
	return &Writer{c: c, synced: map[string]syncMark{}}
}

// WriterStats counts the writer's committed work (for the ingest benchmark).
type WriterStats struct {
	// Statements are the SQL statements of committed batches; Groups the committed
	// batches; Items the heartbeats in them (refused ones included).
	Statements, Groups, Items int64
}

// Stats returns the counts so far.
func (w *Writer) Stats() WriterStats {
	return WriterStats{Statements: w.statements.Load(), Groups: w.groups.Load(), Items: w.items.Load()}
}

// maxTransientRetries bounds the retries of a group that met a deadlock or serialization
// failure (groups sharing machines, e.g. two queue consumers).
const maxTransientRetries = 3

// Write writes items as one group and returns one Outcome per item, in order. A refused
// item (certificate, disabled client, licence) is left out of the writes and gets its
// error; the others commit. When the group's transaction fails with an error of the
// data (an item the database refuses), the group is split in halves until the bad item
// is alone, so it alone gets its 400. When it fails otherwise (outage, internal error),
// every item of the group gets that error and nothing was written.
func (w *Writer) Write(ctx context.Context, items []Item) []Outcome {
	out := make([]Outcome, len(items))
	idx := make([]int, 0, len(items))
	for i := range items {
		if _, err := items[i].inventory(); err != nil {
			out[i].Err = err
			continue
		}
		idx = append(idx, i)
	}
	// Machine id order: every group locks its machines' rows in the same order.
	slices.SortStableFunc(idx, func(a, b int) int {
		if c := strings.Compare(items[a].MachineID, items[b].MachineID); c != 0 {
			return c
		}
		return items[a].Payload.RecordedAt.Compare(items[b].Payload.RecordedAt)
	})
	w.write(ctx, items, idx, out)
	return out
}

func (w *Writer) write(ctx context.Context, items []Item, idx []int, out []Outcome) {
	if len(idx) == 0 {
		return
	}
	var err error
	for attempt := 0; ; attempt++ {
		if err = w.commit(ctx, items, idx, out); err == nil || !db.Transient(err) || attempt == maxTransientRetries {
			break
		}
	}
	if err == nil {
		return
	}
	mapped := storeError(err)
	if len(idx) > 1 && !serverFault(mapped) {
		h := len(idx) / 2
		w.write(ctx, items, idx[:h], out)
		w.write(ctx, items, idx[h:], out)
		return
	}
	for _, i := range idx {
		out[i] = Outcome{Err: mapped}
	}
}

// checked is statement 1's row for an item.
type checked struct {
	code, reason, version *string
	changed               bool
	licence               *time.Time
}

// commit sends the group's batch; on success it fills out for idx, otherwise it returns
// the batch's error and out is untouched (the transaction rolled back).
func (w *Writer) commit(ctx context.Context, items []Item, idx []int, out []Outcome) (err error) {
	g := w.group(items, idx)
	b := g.batch(w.c.LicenceGraceDays, w.c.TouchEvery)
	n := b.Len()
	br := w.c.Pool.SendBatch(ctx, b)
	defer func() {
		if cerr := br.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	rows, err := br.Query()
	if err != nil {
		return err
	}
	res := make([]checked, 0, len(idx))
	for rows.Next() {
		var ord int64
		var c checked
		if err := rows.Scan(&ord, &c.code, &c.reason, &c.changed, &c.version, &c.licence); err != nil {
			rows.Close()
			return err
		}
		res = append(res, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(res) != len(idx) {
		return fmt.Errorf("heartbeat: group check answered %d rows for %d heartbeats", len(res), len(idx))
	}
	var fresh []int64
	if err := br.QueryRow().Scan(&fresh); err != nil {
		return err
	}
	for i := 2; i < n; i++ {
		if _, err := br.Exec(); err != nil {
			return err
		}
	}
	if err := br.Close(); err != nil {
		return err
	}
	isFresh := make([]bool, len(idx)+1)
	for _, o := range fresh {
		if o >= 1 && int(o) <= len(idx) {
			isFresh[o] = true
		}
	}
	w.statements.Add(int64(n))
	w.groups.Add(1)
	w.items.Add(int64(len(idx)))
	w.mu.Lock()
	if len(w.synced) > 200000 {
		clear(w.synced)
	}
	for _, i := range g.synced {
		it := &items[i]
		w.synced[it.MachineID] = syncMark{serial: it.Serial, at: it.ReceivedAt}
	}
	w.mu.Unlock()
	for k, i := range idx {
		it, c := &items[i], res[k]
		if c.code != nil {
			out[i] = Outcome{Err: refusal(*c.code, deref(c.reason))}
			continue
		}
		ans := Answer{NextIntervalSeconds: it.IntervalSeconds, ConfigChanged: c.changed,
			RenewCertificate: !it.CertNotAfter.IsZero() && certs.ShouldRenew(it.CertNotAfter, it.ReceivedAt)}
		if it.WantVersion {
			ans.LatestAgentVersion = deref(c.version)
		}
		if c.licence != nil && !c.licence.After(it.ReceivedAt) {
			until := c.licence.AddDate(0, 0, w.c.LicenceGraceDays)
			ans.LicenceExpired, ans.LicenceGraceUntil = true, &until
		}
		out[i] = Outcome{Answer: ans, Fresh: isFresh[k+1]}
	}
	return nil
}

// refusal is the error of a refused item: the database's reason kept for the log.
func refusal(code, reason string) error {
	switch code {
	case db.ClientDisabled:
		return fmt.Errorf("heartbeat: %s: %w", reason, certs.ErrClientDisabled)
	case db.LicenceExpired:
		return fmt.Errorf("heartbeat: %s: %w", reason, ErrLicenceExpired)
	}
	return fmt.Errorf("heartbeat: %s: %w", reason, certs.ErrRefused)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// group is a group's statement arguments, built in one pass over its items.
type group struct {
	synced []int // items whose certificate columns this group syncs

	// check
	serials              []string
	clients, machines    []string
	nows                 []time.Time
	wants                []bool
	syncIDs              []string
	ords                 []int64
	recorded, dues       []time.Time
	cpu, ram             []float64
	used, total          []*int64
	temp                 []*float64
	recv, sent, up       []*int64
	loss, lat, dlat      []*float64
	procs                []*int32
	versions, ips        []string
	disks                disksArgs
	events               eventsArgs
	smart                []smartRow
	colOrd               []int64
	colMachine, colName  []string
	colData              []string
	colAt, colNow        []time.Time
	sec, svc, sw, nw, pt []invRow
}

type disksArgs struct {
	ord                      []int64
	machine                  []string
	at                       []time.Time
	mount                    []string
	dev, fs, model, iface    []*string
	total, used, usedPercent []*float64
}

type eventsArgs struct {
	ord                         []int64
	machine                     []string
	at, when                    []time.Time
	seq                         []int32
	logName, source, level, msg []string
	eventID                     []*int32
}

type smartRow struct {
	Ord                 int64           `json:"ord"`
	MachineID           string          `json:"machine_id"`
	RecordedAt          time.Time       `json:"recorded_at"`
	Device              string          `json:"device"`
	Model               *string         `json:"model"`
	SerialNumber        *string         `json:"serial_number"`
	HealthStatus        string          `json:"health_status"`
	TemperatureC        *int32          `json:"temperature_c"`
	PowerOnHours        *int64          `json:"power_on_hours"`
	ReallocatedSectors  *int64          `json:"reallocated_sectors"`
	PendingSectors      *int64          `json:"pending_sectors"`
	UncorrectableErrors *int64          `json:"uncorrectable_errors"`
	WearLevelPercent    *float64        `json:"wear_level_percent"`
	Attributes          json.RawMessage `json:"attributes"`
}

// invRow is one machine_inventory part with the keys the group statement needs; the
// part's fields are flattened into the same JSON object.
type invRow struct {
	Ord        int64     `json:"ord"`
	MachineID  string    `json:"machine_id"`
	RecordedAt time.Time `json:"recorded_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	Part       any       `json:"-"`
}

// MarshalJSON flattens the part into the row's object.
func (r invRow) MarshalJSON() ([]byte, error) {
	part, err := json.Marshal(r.Part)
	if err != nil {
		return nil, err
	}
	head, err := json.Marshal(struct {
		Ord        int64     `json:"ord"`
		MachineID  string    `json:"machine_id"`
		RecordedAt time.Time `json:"recorded_at"`
		UpdatedAt  time.Time `json:"updated_at"`
	}{r.Ord, r.MachineID, r.RecordedAt, r.UpdatedAt})
	if err != nil {
		return nil, err
	}
	if len(part) <= 2 { // "{}"
		return head, nil
	}
	return append(append(head[:len(head)-1], ','), part[1:]...), nil
}

// group gathers the arguments of items[idx], ord k+1 for idx[k].
func (w *Writer) group(items []Item, idx []int) *group {
	g := &group{}
	n := len(idx)
	g.serials, g.clients, g.machines, g.nows, g.wants = make([]string, n), make([]string, n), make([]string, n), make([]time.Time, n), make([]bool, n)
	g.ords, g.recorded, g.dues = make([]int64, n), make([]time.Time, n), make([]time.Time, n)
	g.cpu, g.ram = make([]float64, n), make([]float64, n)
	g.used, g.total, g.recv, g.sent, g.up = make([]*int64, n), make([]*int64, n), make([]*int64, n), make([]*int64, n), make([]*int64, n)
	g.temp, g.loss, g.lat, g.dlat, g.procs = make([]*float64, n), make([]*float64, n), make([]*float64, n), make([]*float64, n), make([]*int32, n)
	g.versions, g.ips = make([]string, n), make([]string, n)
	w.mu.Lock()
	for k, i := range idx {
		it := &items[i]
		ord := int64(k + 1)
		p := &it.Payload
		m := p.Metrics
		g.serials[k], g.clients[k], g.machines[k], g.nows[k], g.wants[k] = it.Serial, it.ClientID, it.MachineID, it.ReceivedAt, it.WantVersion
		g.ords[k], g.recorded[k], g.dues[k] = ord, p.RecordedAt, it.ReceivedAt.Add(time.Duration(it.IntervalSeconds)*time.Second)
		g.cpu[k], g.ram[k] = *m.CPUPercent, *m.RAMPercent
		g.used[k], g.total[k], g.temp[k], g.recv[k], g.sent[k] = m.RAMUsedBytes, m.RAMTotalBytes, m.CPUTemp, m.BytesRecv, m.BytesSent
		g.loss[k], g.lat[k], g.dlat[k], g.up[k], g.procs[k] = m.PacketLoss, m.LatencyMS, m.DiskLatencyMS, m.UptimeSeconds, m.ProcessCount
		g.versions[k], g.ips[k] = p.AgentVersion, it.IP
		if mark, ok := w.synced[it.MachineID]; !ok || mark.serial != it.Serial || it.ReceivedAt.Sub(mark.at) >= w.c.SyncEvery || it.ReceivedAt.Before(mark.at) {
			if len(g.syncIDs) == 0 || g.syncIDs[len(g.syncIDs)-1] != it.MachineID {
				g.syncIDs = append(g.syncIDs, it.MachineID)
			}
			g.synced = append(g.synced, i)
		}
		g.add(ord, it)
	}
	w.mu.Unlock()
	return g
}

// add gathers the child rows (disks, events, SMART, snapshots, inventory) of one item.
func (g *group) add(ord int64, it *Item) {
	p, id, at := &it.Payload, it.MachineID, it.Payload.RecordedAt
	d := &g.disks
	for _, x := range p.Disks {
		d.ord, d.machine, d.at = append(d.ord, ord), append(d.machine, id), append(d.at, at)
		d.mount, d.dev, d.fs, d.model, d.iface = append(d.mount, x.MountPoint), append(d.dev, opt(x.Device)), append(d.fs, opt(x.FSType)),
			append(d.model, opt(x.Model)), append(d.iface, opt(x.Interface))
		d.total, d.used, d.usedPercent = append(d.total, x.TotalGB), append(d.used, x.UsedGB), append(d.usedPercent, x.UsedPercent)
	}
	e := &g.events
	for i, x := range p.Events {
		level := x.Level
		if level == "" {
			level = "information"
		}
		e.ord, e.machine, e.at, e.seq = append(e.ord, ord), append(e.machine, id), append(e.at, at), append(e.seq, int32(i))
		e.when, e.logName, e.source, e.eventID = append(e.when, x.EventTime), append(e.logName, x.LogName), append(e.source, x.Source), append(e.eventID, x.EventID)
		e.level, e.msg = append(e.level, level), append(e.msg, x.Message)
	}
	for _, s := range p.SMART {
		health := s.HealthStatus
		if health == "" {
			health = "unknown"
		}
		attrs := s.Attributes
		if len(attrs) == 0 {
			attrs = json.RawMessage("null")
		}
		g.smart = append(g.smart, smartRow{Ord: ord, MachineID: id, RecordedAt: at, Device: s.Device, Model: opt(s.Model),
			SerialNumber: opt(s.SerialNumber), HealthStatus: health, TemperatureC: s.TemperatureC, PowerOnHours: s.PowerOnHours,
			ReallocatedSectors: s.ReallocatedSectors, PendingSectors: s.PendingSectors, UncorrectableErrors: s.UncorrectableErrors,
			WearLevelPercent: s.WearLevelPercent, Attributes: attrs})
	}
	for name, raw := range p.Collectors {
		g.colOrd, g.colMachine, g.colName, g.colData = append(g.colOrd, ord), append(g.colMachine, id), append(g.colName, name), append(g.colData, string(raw))
		g.colAt, g.colNow = append(g.colAt, at), append(g.colNow, it.ReceivedAt)
	}
	if inv := it.inv; inv != nil {
		row := func(part any) invRow {
			return invRow{Ord: ord, MachineID: id, RecordedAt: at, UpdatedAt: it.ReceivedAt, Part: part}
		}
		if inv.security != nil {
			g.sec = append(g.sec, row(inv.security))
		}
		if inv.services != nil {
			g.svc = append(g.svc, row(inv.services))
		}
		if inv.software != nil {
			g.sw = append(g.sw, row(inv.software))
		}
		if inv.network != nil {
			g.nw = append(g.nw, row(inv.network))
		}
		if inv.patches != nil {
			g.pt = append(g.pt, row(inv.patches))
		}
	}
}

// batch queues the group's statements: the check (statement 1, whose rows answer), the
// metrics (statement 2, whose row names the new heartbeats), then one statement per table
// that has rows, the certificate sync when due, and the machines.
func (g *group) batch(graceDays int, touchEvery time.Duration) *pgx.Batch {
	b := &pgx.Batch{}
	b.Queue(checkGroup, g.serials, g.clients, g.machines, g.nows, g.wants, graceDays)
	b.Queue(insertGroupMetrics, g.ords, g.machines, g.recorded, g.cpu, g.ram, g.used, g.total, g.temp, g.recv, g.sent,
		g.loss, g.lat, g.dlat, g.up, g.procs)
	if d := g.disks; len(d.ord) > 0 {
		b.Queue(insertGroupDisks, d.ord, d.machine, d.at, d.mount, d.dev, d.fs, d.total, d.used, d.usedPercent, d.model, d.iface)
	}
	if e := g.events; len(e.ord) > 0 {
		b.Queue(insertGroupEvents, e.ord, e.machine, e.at, e.seq, e.when, e.logName, e.source, e.eventID, e.level, e.msg)
	}
	if len(g.smart) > 0 {
		b.Queue(insertGroupSMART, jsonArg(g.smart))
	}
	if len(g.colOrd) > 0 {
		b.Queue(upsertGroupCollectors, g.colOrd, g.colMachine, g.colName, g.colData, g.colAt, g.colNow)
	}
	for _, part := range []struct {
		rows []invRow
		cols []invCol
	}{{g.sec, securityCols()}, {g.svc, servicesCols()}, {g.sw, softwareCols()}, {g.nw, networkCols()}, {g.pt, patchesCols()}} {
		if len(part.rows) > 0 {
			b.Queue(upsertInventory(part.cols), jsonArg(part.rows))
		}
	}
	if len(g.syncIDs) > 0 {
		sql, args := certs.SyncManyStatement(g.syncIDs)
		b.Queue(sql, args...)
	}
	b.Queue(touchGroupMachines, g.ords, g.machines, g.nows, g.dues, g.recorded, g.cpu, g.ram, g.versions, g.ips,
		touchEvery.Seconds())
	return b
}

// jsonArg is rows as a JSON array text (cast to jsonb in SQL): for the rarer, wider rows
// (SMART, inventory), read with jsonb_to_recordset.
func jsonArg(rows any) string {
	b, err := json.Marshal(rows)
	if err != nil {
		// Rows are built from validated values; a failure is a bug: make the statement fail.
		return "not json"
	}
	return string(b)
}

func opt(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
