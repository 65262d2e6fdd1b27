package tsdbsidecar

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestSidecar starts the sidecar and proves, through pgx and PoolConfig, that the TimescaleDB
// features the project depends on work. Steps share one server and build on each other, so the
// first failing step stops the test. Findings are written up in tools/tsdb-sidecar/README.md.
func TestTimescaleSidecar(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	started := time.Now()
	srv, err := Start(ctx, t.Logf)
	if SkipMissing(err) {
		t.Skipf("%v (%s is set)", err, SkipEnv) // node or npm missing, and the run opted out
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sidecar ready in %s at %s", time.Since(started).Round(time.Millisecond), srv.URL())
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})

	step := func(name string, fn func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, fn) {
			t.FailNow()
		}
	}

	// Raw connections first, before the pool exists: they show why PoolConfig is what it is.
	step("one session shared by all connections", func(t *testing.T) {
		c1 := connect(ctx, t, srv.URL())
		c2 := connect(ctx, t, srv.URL())
		mustExec(ctx, t, c1, "SET application_name = 'first-conn'")
		var name string
		if err := c2.QueryRow(ctx, "SHOW application_name").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if name != "first-conn" {
			t.Fatalf("application_name seen by another connection = %q; the session is no longer shared: revisit PoolConfig and the README", name)
		}
		mustExec(ctx, t, c1, "RESET application_name")
	})

	step("stale prepared statements clash without DEALLOCATE ALL", func(t *testing.T) {
		const q = "SELECT $1::int + 1"
		c1 := connect(ctx, t, srv.URL())
		var n int
		if err := c1.QueryRow(ctx, q, 1).Scan(&n); err != nil {
			t.Fatal(err)
		}
		_ = c1.Close(ctx)
		c2 := connect(ctx, t, srv.URL())
		err := c2.QueryRow(ctx, q, 1).Scan(&n)
		if code := sqlState(err); code != "42P05" {
			t.Fatalf("same query on a fresh raw connection: err = %v, want SQLSTATE 42P05 (prepared statement already exists)", err)
		}
		// What PoolConfig's AfterConnect does:
		mustExec(ctx, t, c2, "DEALLOCATE ALL")
		if err := c2.QueryRow(ctx, q, 1).Scan(&n); err != nil || n != 2 {
			t.Fatalf("after DEALLOCATE ALL: n=%d err=%v", n, err)
		}
		_ = c2.Close(ctx)
		// Leave the session clean for the pool.
		c3 := connect(ctx, t, srv.URL())
		mustExec(ctx, t, c3, "DEALLOCATE ALL")
	})

	step("TLS negotiation answered", func(t *testing.T) {
		// The sidecar answers SSLRequest with 'N': sslmode=prefer falls back to plain text,
		// sslmode=require fails at once instead of hanging.
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		c := connect(cctx, t, strings.Replace(srv.URL(), "sslmode=disable", "sslmode=prefer", 1))
		_ = c.Close(cctx)
		_, err := pgx.Connect(cctx, strings.Replace(srv.URL(), "sslmode=disable", "sslmode=require", 1))
		if err == nil || !strings.Contains(err.Error(), "server refused TLS") {
			t.Fatalf("sslmode=require: err = %v, want server refused TLS", err)
		}
	})

	cfg, err := PoolConfig(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxConns != 1 || cfg.MinConns != 0 || cfg.AfterConnect == nil {
		t.Fatalf("PoolConfig: MaxConns=%d MinConns=%d AfterConnect set=%v", cfg.MaxConns, cfg.MinConns, cfg.AfterConnect != nil)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	step("pool reconnect with PoolConfig", func(t *testing.T) {
		const q = "SELECT $1::int * 2"
		for i := range 3 { // each pool is a new connection to the same session
			p, err := pgxpool.NewWithConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var n int
			err = p.QueryRow(ctx, q, 21).Scan(&n)
			p.Close()
			if err != nil || n != 42 {
				t.Fatalf("pool #%d: n=%d err=%v", i, n, err)
			}
		}
	})

	step("timescaledb extension", func(t *testing.T) {
		var v string
		if err := pool.QueryRow(ctx, "SELECT extversion FROM pg_extension WHERE extname='timescaledb'").Scan(&v); err != nil {
			t.Fatal(err)
		}
		t.Logf("timescaledb %s", v)
		if v == "" {
			t.Fatal("empty extversion")
		}
	})

	step("pg_advisory_lock", func(t *testing.T) {
		var got bool
		mustPoolExec(ctx, t, pool, "SELECT pg_advisory_lock(4242)")
		if err := pool.QueryRow(ctx, "SELECT pg_try_advisory_lock(4242)").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if !got { // re-entrant within the session, as in PostgreSQL
			t.Fatal("pg_try_advisory_lock in the holding session returned false")
		}
		// Another connection is the same session, so the lock does not exclude it.
		c := connect(ctx, t, srv.URL())
		if err := c.QueryRow(ctx, "SELECT pg_try_advisory_lock(4242)", pgx.QueryExecModeSimpleProtocol).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if !got {
			t.Fatal("pg_try_advisory_lock from another connection returned false: sessions are no longer shared, update the README")
		}
		_ = c.Close(ctx)
		mustPoolExec(ctx, t, pool, "SELECT pg_advisory_unlock_all()")
		var held int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").Scan(&held); err != nil {
			t.Fatal(err)
		}
		if held != 0 {
			t.Fatalf("%d advisory locks still held after pg_advisory_unlock_all", held)
		}
	})

	step("hypertable", func(t *testing.T) {
		mustPoolExec(ctx, t, pool, `CREATE TABLE metrics (
			id uuid NOT NULL DEFAULT gen_random_uuid(),
			machine_id uuid NOT NULL,
			recorded_at timestamptz NOT NULL,
			cpu double precision NOT NULL)`)
		mustPoolExec(ctx, t, pool, "SELECT create_hypertable('metrics', by_range('recorded_at', INTERVAL '1 day'))")
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = 'metrics'").Scan(&n); err != nil || n != 1 {
			t.Fatalf("hypertables: n=%d err=%v", n, err)
		}
	})

	// Test data: 4 machines, one sample every 10 minutes over the last 5 days.
	machines := [][16]byte{uuidN(1), uuidN(2), uuidN(3), uuidN(4)}
	now := time.Now().UTC().Truncate(time.Second)
	var rows []sample
	for k := 0; k < 5*24*6; k++ {
		at := now.Add(-5*24*time.Hour + 5*time.Minute + time.Duration(k)*10*time.Minute)
		for m, id := range machines {
			rows = append(rows, sample{id, at, float64((k*7+m*13)%100) + 0.5})
		}
	}

	step("unnest insert of a few thousand rows", func(t *testing.T) {
		n := insertUnnest(ctx, t, pool, rows)
		if n != int64(len(rows)) {
			t.Fatalf("inserted %d rows, want %d", n, len(rows))
		}
		var chunks int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM show_chunks('metrics')").Scan(&chunks); err != nil {
			t.Fatal(err)
		}
		t.Logf("%d rows in %d chunks", len(rows), chunks)
		if chunks < 5 {
			t.Fatalf("%d chunks for 5 days of data with 1-day chunks", chunks)
		}
	})

	step("compression policy via run_job", func(t *testing.T) {
		mustPoolExec(ctx, t, pool, "ALTER TABLE metrics SET (timescaledb.compress, timescaledb.compress_segmentby = 'machine_id')")
		var job int
		if err := pool.QueryRow(ctx, "SELECT add_compression_policy('metrics', INTERVAL '2 days')").Scan(&job); err != nil {
			t.Fatal(err)
		}
		mustPoolExec(ctx, t, pool, "CALL run_job($1)", job)

		type chunk struct {
			name       string
			compressed bool
			old        bool
		}
		got, err := pgx.CollectRows(mustQuery(ctx, t, pool, `
			SELECT chunk_name, is_compressed, range_end <= now() - INTERVAL '2 days'
			FROM timescaledb_information.chunks WHERE hypertable_name = 'metrics' ORDER BY range_start`),
			func(r pgx.CollectableRow) (chunk, error) {
				var c chunk
				return c, r.Scan(&c.name, &c.compressed, &c.old)
			})
		if err != nil {
			t.Fatal(err)
		}
		var nOld, nNew int
		for _, c := range got {
			if c.compressed != c.old {
				t.Errorf("chunk %s: is_compressed=%v, older than 2 days=%v", c.name, c.compressed, c.old)
			}
			if c.old {
				nOld++
			} else {
				nNew++
			}
		}
		if nOld == 0 || nNew == 0 {
			t.Fatalf("want both old and recent chunks, got %d old, %d recent", nOld, nNew)
		}
		// Compressed chunks really moved their rows out of the chunk's own heap.
		for _, c := range got {
			if !c.compressed {
				continue
			}
			var inHeap int
			if err := pool.QueryRow(ctx, "SELECT count(*) FROM ONLY _timescaledb_internal."+pgx.Identifier{c.name}.Sanitize()).Scan(&inHeap); err != nil {
				t.Fatal(err)
			}
			if inHeap != 0 {
				t.Errorf("compressed chunk %s still has %d rows in its heap", c.name, inHeap)
			}
		}
		var olderThan int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM show_chunks('metrics', older_than => INTERVAL '2 days')").Scan(&olderThan); err != nil {
			t.Fatal(err)
		}
		if olderThan != nOld {
			t.Errorf("show_chunks(older_than => 2 days) = %d chunks, compressed %d", olderThan, nOld)
		}
		t.Logf("compressed %d of %d chunks", nOld, len(got))

		// Compressed data still reads back whole.
		var cnt int
		var sum float64
		if err := pool.QueryRow(ctx, "SELECT count(*), sum(cpu) FROM metrics").Scan(&cnt, &sum); err != nil {
			t.Fatal(err)
		}
		if cnt != len(rows) || !near(sum, sumCPU(rows)) {
			t.Fatalf("after compression: count=%d sum=%v, want %d, %v", cnt, sum, len(rows), sumCPU(rows))
		}
	})

	step("hypertable_compression_stats", func(t *testing.T) {
		var total, compressed int
		var before, after int64
		err := pool.QueryRow(ctx, `SELECT total_chunks, number_compressed_chunks, before_compression_total_bytes, after_compression_total_bytes
			FROM hypertable_compression_stats('metrics')`).Scan(&total, &compressed, &before, &after)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("total_chunks=%d compressed=%d bytes %d -> %d", total, compressed, before, after)
		if compressed == 0 || compressed >= total || before <= 0 || after <= 0 {
			t.Fatalf("implausible stats: total_chunks=%d compressed=%d bytes %d -> %d", total, compressed, before, after)
		}
	})

	const caggSQL = `CREATE MATERIALIZED VIEW %s WITH (timescaledb.continuous) AS
		SELECT time_bucket('1 hour', recorded_at) AS bucket, machine_id, avg(cpu) AS avg_cpu, count(*) AS n
		FROM metrics GROUP BY 1, 2 WITH %s`

	step("continuous aggregate WITH DATA is refused inside a transaction", func(t *testing.T) {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck
		_, err = tx.Exec(ctx, fmt.Sprintf(caggSQL, "metrics_tx_data", "DATA"))
		if sqlState(err) != "25001" {
			t.Fatalf("err = %v, want SQLSTATE 25001 (cannot run inside a transaction block)", err)
		}
	})

	step("continuous aggregate WITH NO DATA inside a transaction", func(t *testing.T) {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, fmt.Sprintf(caggSQL, "metrics_hourly", "NO DATA"))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM timescaledb_information.continuous_aggregates WHERE view_name = 'metrics_hourly'").Scan(&n); err != nil || n != 1 {
			t.Fatalf("continuous_aggregates: n=%d err=%v", n, err)
		}
	})

	var caggJob int
	step("continuous aggregate policy and refresh", func(t *testing.T) {
		err := pool.QueryRow(ctx, `SELECT add_continuous_aggregate_policy('metrics_hourly',
			start_offset => INTERVAL '31 days', end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '1 hour')`).Scan(&caggJob)
		if err != nil {
			t.Fatal(err)
		}
		// Refresh is refused inside a transaction block, like WITH DATA.
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec(ctx, "CALL refresh_continuous_aggregate('metrics_hourly', NULL, NULL)")
		_ = tx.Rollback(ctx)
		if sqlState(err) != "25001" {
			t.Fatalf("refresh in a transaction: err = %v, want SQLSTATE 25001", err)
		}

		mustPoolExec(ctx, t, pool, "CALL refresh_continuous_aggregate('metrics_hourly', NULL, NULL)")
		checkCagg(ctx, t, pool, rows)
		// The policy's job runs too (the sidecar has no background workers to run it by itself).
		mustPoolExec(ctx, t, pool, "CALL run_job($1)", caggJob)
	})

	step("DELETE USING on a compressed chunk", func(t *testing.T) {
		var from, to time.Time
		err := pool.QueryRow(ctx, `SELECT range_start, range_end FROM timescaledb_information.chunks
			WHERE hypertable_name = 'metrics' AND is_compressed ORDER BY range_start DESC LIMIT 1`).Scan(&from, &to)
		if err != nil {
			t.Fatal(err)
		}
		victim := machines[0]
		var want int64
		var kept []sample
		for _, r := range rows {
			if r.machine == victim && !r.at.Before(from) && r.at.Before(to) {
				want++
			} else {
				kept = append(kept, r)
			}
		}
		tag, err := pool.Exec(ctx, `DELETE FROM metrics m USING (SELECT unnest($1::uuid[]) AS machine_id) d
			WHERE m.machine_id = d.machine_id AND m.recorded_at >= $2 AND m.recorded_at < $3`,
			[][16]byte{victim}, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if tag.RowsAffected() != want || want == 0 {
			t.Fatalf("deleted %d rows, want %d (>0)", tag.RowsAffected(), want)
		}
		rows = kept
		var cnt int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM metrics").Scan(&cnt); err != nil || cnt != len(rows) {
			t.Fatalf("after delete: count=%d err=%v, want %d", cnt, err, len(rows))
		}
		// The aggregate follows the delete on the next refresh.
		mustPoolExec(ctx, t, pool, "CALL refresh_continuous_aggregate('metrics_hourly', NULL, NULL)")
		checkCagg(ctx, t, pool, rows)
	})

	step("retention policy via run_job", func(t *testing.T) {
		var job int
		if err := pool.QueryRow(ctx, "SELECT add_retention_policy('metrics', drop_after => INTERVAL '4 days')").Scan(&job); err != nil {
			t.Fatal(err)
		}
		var toDrop, before int
		var dropRows int
		err := pool.QueryRow(ctx, `SELECT count(*), (SELECT count(*) FROM show_chunks('metrics')),
			(SELECT count(*) FROM metrics WHERE recorded_at < (SELECT max(range_end) FROM timescaledb_information.chunks
			 WHERE hypertable_name = 'metrics' AND range_end <= now() - INTERVAL '4 days'))
			FROM show_chunks('metrics', older_than => INTERVAL '4 days')`).Scan(&toDrop, &before, &dropRows)
		if err != nil {
			t.Fatal(err)
		}
		if toDrop == 0 {
			t.Fatal("no chunk older than 4 days to drop")
		}
		mustPoolExec(ctx, t, pool, "CALL run_job($1)", job)
		var after, left, cnt int
		err = pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM show_chunks('metrics')),
			(SELECT count(*) FROM show_chunks('metrics', older_than => INTERVAL '4 days')), (SELECT count(*) FROM metrics)`).Scan(&after, &left, &cnt)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("retention dropped %d of %d chunks (%d rows)", before-after, before, dropRows)
		if left != 0 || after != before-toDrop || cnt != len(rows)-dropRows {
			t.Fatalf("after retention: chunks %d -> %d (want -%d), %d older chunks left, rows %d want %d", before, after, toDrop, left, cnt, len(rows)-dropRows)
		}
	})

	step("pgx Batch with several statements", func(t *testing.T) {
		b := &pgx.Batch{}
		b.Queue("INSERT INTO metrics (machine_id, recorded_at, cpu) VALUES ($1, $2, $3)", uuidN(9), now, 1.5)
		b.Queue("INSERT INTO metrics (machine_id, recorded_at, cpu) VALUES ($1, $2, $3)", uuidN(9), now.Add(time.Second), 2.5)
		b.Queue("UPDATE metrics SET cpu = cpu * 2 WHERE machine_id = $1", uuidN(9))
		b.Queue("SELECT count(*), sum(cpu) FROM metrics WHERE machine_id = $1", uuidN(9))
		b.Queue("SELECT extversion FROM pg_extension WHERE extname = $1", "timescaledb")
		br := pool.SendBatch(ctx, b)
		for i := range 2 {
			if tag, err := br.Exec(); err != nil || tag.RowsAffected() != 1 {
				t.Fatalf("insert %d: %v %v", i, tag, err)
			}
		}
		if tag, err := br.Exec(); err != nil || tag.RowsAffected() != 2 {
			t.Fatalf("update: %v %v", tag, err)
		}
		var cnt int
		var sum float64
		if err := br.QueryRow().Scan(&cnt, &sum); err != nil || cnt != 2 || sum != 8 {
			t.Fatalf("select: count=%d sum=%v err=%v", cnt, sum, err)
		}
		var v string
		if err := br.QueryRow().Scan(&v); err != nil || v == "" {
			t.Fatalf("extversion: %q %v", v, err)
		}
		if err := br.Close(); err != nil {
			t.Fatal(err)
		}
		mustPoolExec(ctx, t, pool, "DELETE FROM metrics WHERE machine_id = $1", uuidN(9))
	})

	step("large unnest inserts", func(t *testing.T) {
		mk := func(n int, machine [16]byte) []sample {
			s := make([]sample, n)
			for i := range s {
				s[i] = sample{machine, now.Add(-time.Duration(i) * 100 * time.Millisecond), float64(i % 100)}
			}
			return s
		}
		// One statement, 25,000 rows: about 1.1 MB of binary parameters in one Bind message.
		big := mk(25000, uuidN(20))
		if n := insertUnnest(ctx, t, pool, big); n != int64(len(big)) {
			t.Fatalf("inserted %d, want %d", n, len(big))
		}
		// One batch of five 5,000-row inserts: about 1.1 MB sent in one go.
		b := &pgx.Batch{}
		var total int
		for i := range 5 {
			part := mk(5000, uuidN(30+i))
			total += len(part)
			ids, ats, cpus := columns(part)
			b.Queue(unnestInsert, ids, ats, cpus)
		}
		if err := pool.SendBatch(ctx, b).Close(); err != nil {
			t.Fatal(err)
		}
		var cnt int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM metrics WHERE machine_id = ANY($1)",
			[][16]byte{uuidN(20), uuidN(30), uuidN(31), uuidN(32), uuidN(33), uuidN(34)}).Scan(&cnt); err != nil {
			t.Fatal(err)
		}
		if cnt != len(big)+total {
			t.Fatalf("count = %d, want %d", cnt, len(big)+total)
		}
	})

	step("still alive", func(t *testing.T) {
		var one int
		if err := pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
			t.Fatalf("SELECT 1: %d %v", one, err)
		}
	})
}

type sample struct {
	machine [16]byte
	at      time.Time
	cpu     float64
}

const unnestInsert = `INSERT INTO metrics (machine_id, recorded_at, cpu)
	SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::float8[])`

func columns(rows []sample) ([][16]byte, []time.Time, []float64) {
	ids := make([][16]byte, len(rows))
	ats := make([]time.Time, len(rows))
	cpus := make([]float64, len(rows))
	for i, r := range rows {
		ids[i], ats[i], cpus[i] = r.machine, r.at, r.cpu
	}
	return ids, ats, cpus
}

func insertUnnest(ctx context.Context, t *testing.T, pool *pgxpool.Pool, rows []sample) int64 {
	t.Helper()
	ids, ats, cpus := columns(rows)
	tag, err := pool.Exec(ctx, unnestInsert, ids, ats, cpus)
	if err != nil {
		t.Fatalf("unnest insert of %d rows: %v", len(rows), err)
	}
	return tag.RowsAffected()
}

// checkCagg compares metrics_hourly with averages computed here from rows.
func checkCagg(ctx context.Context, t *testing.T, pool *pgxpool.Pool, rows []sample) {
	t.Helper()
	type key struct {
		bucket  int64
		machine [16]byte
	}
	type agg struct {
		sum float64
		n   int64
	}
	want := map[key]agg{}
	for _, r := range rows {
		k := key{r.at.Truncate(time.Hour).Unix(), r.machine}
		a := want[k]
		a.sum += r.cpu
		a.n++
		want[k] = a
	}
	got, err := pgx.CollectRows(mustQuery(ctx, t, pool, "SELECT bucket, machine_id, avg_cpu, n FROM metrics_hourly"),
		func(r pgx.CollectableRow) (struct {
			k   key
			avg float64
			n   int64
		}, error) {
			var v struct {
				k   key
				avg float64
				n   int64
			}
			var b time.Time
			err := r.Scan(&b, &v.k.machine, &v.avg, &v.n)
			v.k.bucket = b.Unix()
			return v, err
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("metrics_hourly has %d rows, want %d", len(got), len(want))
	}
	bad := 0
	for _, g := range got {
		w, ok := want[g.k]
		if !ok || g.n != w.n || !near(g.avg, w.sum/float64(w.n)) {
			if bad++; bad <= 5 {
				t.Errorf("bucket %s machine %x: avg=%v n=%d, want avg=%v n=%d (present=%v)",
					time.Unix(g.k.bucket, 0).UTC(), g.k.machine[:2], g.avg, g.n, w.sum/float64(w.n), w.n, ok)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d buckets differ", bad, len(got))
	}
}

func sumCPU(rows []sample) float64 {
	var s float64
	for _, r := range rows {
		s += r.cpu
	}
	return s
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func uuidN(n int) [16]byte {
	var u [16]byte
	u[0], u[15] = byte(n), byte(n)
	u[6] = 0x40 // version 4
	u[8] = 0x80 // RFC 4122 variant
	return u
}

func connect(ctx context.Context, t *testing.T, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func mustExec(ctx context.Context, t *testing.T, c *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func mustPoolExec(ctx context.Context, t *testing.T, p *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := p.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func mustQuery(ctx context.Context, t *testing.T, p *pgxpool.Pool, sql string, args ...any) pgx.Rows {
	t.Helper()
	rows, err := p.Query(ctx, sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return rows
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
