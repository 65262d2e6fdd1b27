package main

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// explained is where one request's database time goes: every statement it ran, with
// auto_explain's EXPLAIN ANALYZE of the slowest.
type explained struct {
	Route      string
	Status     int
	Statements int
	TotalMs    float64
	SlowestMs  float64
	Query      string   // the slowest statement, first line
	Plan       []string // its plan's first lines
	Err        string
}

// noticeSink collects the NOTICE messages auto_explain sends (auto_explain.log_level =
// notice sends each plan to the client that ran the statement).
type noticeSink struct {
	mu  sync.Mutex
	msg []string
}

func (n *noticeSink) add(_ *pgconn.PgConn, no *pgconn.Notice) {
	n.mu.Lock()
	n.msg = append(n.msg, no.Message)
	n.mu.Unlock()
}

func (n *noticeSink) take() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := n.msg
	n.msg = nil
	return out
}

// explainTune loads auto_explain into every connection of the explain pass's pool: every
// statement is run with EXPLAIN ANALYZE (buffers included) and its plan sent back.
func explainTune(sink *noticeSink) func(*pgxpool.Config) {
	return func(cfg *pgxpool.Config) {
		cfg.ConnConfig.OnNotice = sink.add
		cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
			for _, s := range []string{`LOAD 'auto_explain'`, `SET auto_explain.log_min_duration = 0`,
				`SET auto_explain.log_analyze = on`, `SET auto_explain.log_buffers = on`,
				`SET auto_explain.log_nested_statements = on`, `SET auto_explain.log_level = notice`} {
				if _, err := c.Exec(ctx, s); err != nil {
					return fmt.Errorf("%s: %w", s, err)
				}
			}
			return nil
		}
	}
}

var durationRe = regexp.MustCompile(`^duration: ([0-9.]+) ms`)

// explainRoute runs the request once to warm up, then once with its plans collected.
func explainRoute(ctx context.Context, h *httpClient, sink *noticeSink, token, route, path string) explained {
	e := explained{Route: route}
	h.get(ctx, token, path)
	sink.take()
	st, body, _ := h.get(ctx, token, path)
	e.Status = st
	if st < 200 || st >= 300 {
		if len(body) > 120 {
			body = body[:120]
		}
		e.Err = fmt.Sprintf("HTTP %d %s", st, body)
	}
	type stmt struct {
		ms    float64
		lines []string
	}
	var stmts []stmt
	for _, m := range sink.take() {
		sm := durationRe.FindStringSubmatch(m)
		if sm == nil {
			continue
		}
		ms, _ := strconv.ParseFloat(sm[1], 64)
		stmts = append(stmts, stmt{ms, strings.Split(m, "\n")})
		e.TotalMs += ms
	}
	e.Statements = len(stmts)
	if len(stmts) == 0 {
		return e
	}
	sort.Slice(stmts, func(i, j int) bool { return stmts[i].ms > stmts[j].ms })
	s := stmts[0]
	e.SlowestMs = s.ms
	for i, l := range s.lines {
		if q, ok := strings.CutPrefix(strings.TrimSpace(l), "Query Text:"); ok {
			e.Query = strings.Join(strings.Fields(q), " ")
			// the query may span lines until the plan starts
			for _, more := range s.lines[i+1:] {
				if strings.Contains(more, "(cost=") || strings.Contains(more, "(actual") {
					break
				}
				e.Query += " " + strings.Join(strings.Fields(more), " ")
			}
			if len(e.Query) > 300 {
				e.Query = e.Query[:300] + "…"
			}
		}
		if strings.Contains(l, "(actual") || strings.Contains(l, "Buffers:") || strings.Contains(l, "Filter:") ||
			strings.Contains(l, "Index Cond:") || strings.Contains(l, "Rows Removed") || strings.Contains(l, "Sort ") {
			if len(e.Plan) < 14 {
				e.Plan = append(e.Plan, strings.TrimRight(l, " "))
			}
		}
	}
	return e
}
