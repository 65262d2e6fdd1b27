package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/auth"
)

// fleetClient is what the workload knows of a seeded client.
type fleetClient struct {
	ID       string
	Machines int
	Prefix   string   // hostname prefix ("c01")
	Groups   []string // group ids
	Big      bool     // the largest client (5,000 machines): the targets are about it
}

// fleet is the seeded data the workload draws from.
type fleet struct {
	Clients []*fleetClient
	History []string // the big client's machines with 30 days of series
}

func loadFleet(ctx context.Context, pool *pgxpool.Pool) (*fleet, error) {
	rows, err := pool.Query(ctx, `
		SELECT c.id, count(m.id), min(split_part(m.hostname, '-', 1)),
		       (SELECT array_agg(g.id::text ORDER BY g.name) FROM machine_groups g WHERE g.client_id = c.id)
		FROM clients c JOIN machines m ON m.client_id = c.id AND m.deleted_at IS NULL
		GROUP BY c.id ORDER BY count(m.id) DESC, c.id`)
	if err != nil {
		return nil, err
	}
	f := &fleet{}
	f.Clients, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*fleetClient, error) {
		c := &fleetClient{}
		return c, r.Scan(&c.ID, &c.Machines, &c.Prefix, &c.Groups)
	})
	if err != nil {
		return nil, err
	}
	if len(f.Clients) == 0 {
		return nil, fmt.Errorf("no seeded clients")
	}
	f.Clients[0].Big = true
	// The machines with 30 days of series (the others have at most the hour of their newest
	// heartbeat in the rollups).
	rows, err = pool.Query(ctx, `SELECT machine_id::text FROM metrics_hourly GROUP BY machine_id HAVING count(*) > 48 ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	f.History, err = pgx.CollectRows(rows, pgx.RowTo[string])
	return f, err
}

// simUser is one dashboard user of a client.
type simUser struct {
	ID, Token string
	Client    *fleetClient
}

// createUsers makes the dashboard users: perBig for the largest client, perOther for each
// of the others. Their password is current (no change required), as after a first login.
func createUsers(ctx context.Context, a *auth.Service, f *fleet, perBig, perOther int) ([]*simUser, error) {
	var users []*simUser
	for _, c := range f.Clients {
		n := perOther
		if c.Big {
			n = perBig
		}
		for i := 0; i < n; i++ {
			role := "user"
			if i%10 == 0 {
				role = "admin"
			}
			id, err := a.CreateUser(ctx, auth.NewUser{Email: fmt.Sprintf("%s-u%02d-%d@bench.example.com", c.Prefix, i, time.Now().UnixNano()),
				Name: "Bench user", Role: role, ClientID: c.ID, Password: "Bench-Password-2026!"})
			if err != nil {
				return nil, err
			}
			users = append(users, &simUser{ID: id, Client: c})
		}
	}
	return users, nil
}

// recorder keeps the client-side latency of every answer, per label.
type recorder struct {
	mu     sync.Mutex
	ok     map[string][]time.Duration // 2xx answers
	status map[string]map[int]int
	errs   map[string]string // one example of a non-2xx answer per label
}

func newRecorder() *recorder {
	return &recorder{ok: map[string][]time.Duration{}, status: map[string]map[int]int{}, errs: map[string]string{}}
}

func (r *recorder) add(label string, d time.Duration, status int, body []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status[label] == nil {
		r.status[label] = map[int]int{}
	}
	r.status[label][status]++
	if status >= 200 && status < 300 {
		r.ok[label] = append(r.ok[label], d)
	} else if _, seen := r.errs[label]; !seen {
		if len(body) > 200 {
			body = body[:200]
		}
		r.errs[label] = fmt.Sprintf("HTTP %d %s", status, body)
	}
}

func (r *recorder) labels() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for l := range r.status {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// dist is a latency distribution in milliseconds.
type dist struct {
	N, Failed     int
	P50, P90, P99 float64
	Max           float64
}

func (r *recorder) dist(label string) dist {
	r.mu.Lock()
	defer r.mu.Unlock()
	ds := append([]time.Duration(nil), r.ok[label]...)
	d := dist{N: len(ds)}
	for s, n := range r.status[label] {
		if s < 200 || s >= 300 {
			d.Failed += n
		}
	}
	if len(ds) == 0 {
		return d
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	q := func(p float64) float64 {
		i := int(p*float64(len(ds))+0.999999) - 1 // nearest rank
		return float64(ds[max(0, min(i, len(ds)-1))].Microseconds()) / 1000
	}
	d.P50, d.P90, d.P99, d.Max = q(0.50), q(0.90), q(0.99), float64(ds[len(ds)-1].Microseconds())/1000
	return d
}

// httpClient calls the stack like a browser: keep-alive connections, gzip accepted.
type httpClient struct {
	base string
	c    *http.Client
}

func newHTTPClient(base string) *httpClient {
	t := &http.Transport{MaxIdleConns: 500, MaxIdleConnsPerHost: 500, IdleConnTimeout: time.Minute}
	return &httpClient{base: base, c: &http.Client{Transport: t, Timeout: 60 * time.Second}}
}

// get times one request from sending it to the last byte of its body.
func (h *httpClient) get(ctx context.Context, token, path string) (int, []byte, time.Duration) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base+path, nil)
	if err != nil {
		return 0, []byte(err.Error()), 0
	}
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	resp, err := h.c.Do(req)
	if err != nil {
		return 0, []byte(err.Error()), time.Since(start)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		return 0, []byte(err.Error()), d
	}
	return resp.StatusCode, body, d
}

// listPage is the part of a list answer the workload follows.
type listPage struct {
	Machines []struct {
		ID string `json:"id"`
	} `json:"machines"`
	NextCursor *string `json:"next_cursor"`
}

// view is the list a user looks at: its query parameters and the kind it is reported as.
type view struct {
	Kind  string
	Query url.Values
}

var searchTerms = []string{"srv", "ws-01", "LT-004", "0042", "lt", "srv-002", "WS-0", "nomatch-zz"}

// pickView draws the list a user opens. Most refreshes are of the default list; the rest
// search, filter by status, OS or group, or sort by last seen.
func pickView(rnd *rand.Rand, c *fleetClient) view {
	q := url.Values{"limit": {"50"}}
	r := rnd.Float64()
	switch {
	case r < 0.50:
		return view{"default", q}
	case r < 0.60:
		q.Set("search", searchTerms[rnd.IntN(len(searchTerms))])
		return view{"search", q}
	case r < 0.72:
		q.Set("status", []string{"offline", "alert", "online"}[rnd.IntN(3)])
		return view{"filter status", q}
	case r < 0.76:
		q.Set("cert_status", []string{"expiring", "expired", "revoked"}[rnd.IntN(3)])
		return view{"filter certificate", q}
	case r < 0.82:
		q.Set("os", []string{"linux", "windows"}[rnd.IntN(2)])
		return view{"filter os", q}
	case r < 0.92 && len(c.Groups) > 0:
		q.Set("group", c.Groups[rnd.IntN(len(c.Groups))])
		return view{"filter group", q}
	default:
		q.Set("sort", "-last_seen")
		return view{"sort -last_seen", q}
	}
}

var periods = []struct {
	P string
	W float64
}{{"24h", 0.60}, {"7d", 0.25}, {"30d", 0.15}}

// replayOptions shape one replay of the dashboard workload.
type replayOptions struct {
	Requests int           // stop after this many requests (0: no cap)
	Duration time.Duration // and after this long
	Refresh  time.Duration // each user's refresh interval, already compressed
	Seed     uint64
	// OnWarm is called once, WarmAfter into the run (the real-pace pass counts cache reads
	// from then on).
	WarmAfter time.Duration
	OnWarm    func()
}

// replay runs every user concurrently: each refreshes its list every Refresh (±20 %),
// sometimes looks at the overview, opens a machine's details, and — for the largest
// client, whose 500 machines have 30 days of series — its history.
func replay(ctx context.Context, h *httpClient, f *fleet, users []*simUser, o replayOptions, rec *recorder) (int64, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var issued atomic.Int64
	var opened sync.Map // machine id -> opened before in this replay
	take := func() bool {
		n := issued.Add(1)
		return o.Requests == 0 || n <= int64(o.Requests)
	}
	if o.OnWarm != nil {
		t := time.AfterFunc(o.WarmAfter, o.OnWarm)
		defer t.Stop()
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(o.Seed, uint64(i)))
			sleep := func(d time.Duration) bool {
				t := time.NewTimer(d)
				defer t.Stop()
				select {
				case <-ctx.Done():
					return false
				case <-t.C:
					return true
				}
			}
			call := func(label, path string) ([]byte, bool) {
				if !take() || ctx.Err() != nil {
					return nil, false
				}
				st, body, d := h.get(ctx, u.Token, path)
				if ctx.Err() != nil {
					return nil, false // cut by the end of the run: not a measurement
				}
				rec.add(label, d, st, body)
				return body, true
			}
			suffix := ""
			if !u.Client.Big {
				suffix = " (other clients)"
			}
			// Users do not all start at once: the first refresh is spread over one interval.
			if !sleep(time.Duration(rnd.Float64() * float64(o.Refresh))) {
				return
			}
			v := pickView(rnd, u.Client)
			var next string
			for {
				if rnd.Float64() < 0.2 {
					v, next = pickView(rnd, u.Client), ""
				}
				q, kind := url.Values{}, v.Kind
				for k, vs := range v.Query {
					q[k] = vs
				}
				if next != "" && rnd.Float64() < 0.15 {
					q.Set("cursor", next)
					kind = "next page"
				}
				label := "list " + kind
				if !u.Client.Big {
					label = "list"
				}
				body, ok := call(label+suffix, "/api/machines?"+q.Encode())
				if !ok {
					return
				}
				var page listPage
				_ = json.Unmarshal(body, &page)
				if kind != "next page" {
					next = ""
					if page.NextCursor != nil {
						next = *page.NextCursor
					}
				}
				if rnd.Float64() < 0.3 {
					if _, ok := call("overview"+suffix, "/api/overview"); !ok {
						return
					}
				}
				if rnd.Float64() < 0.25 && len(page.Machines) > 0 {
					id := page.Machines[rnd.IntN(len(page.Machines))].ID
					label := "details (repeat open)"
					if _, seen := opened.LoadOrStore(id, true); !seen {
						label = "details (first open)"
					}
					if _, ok := call(label+suffix, "/api/machines/"+id); !ok {
						return
					}
					if u.Client.Big && len(f.History) > 0 && rnd.Float64() < 0.6 {
						hid, p := f.History[rnd.IntN(len(f.History))], pickPeriod(rnd)
						if _, ok := call("metrics "+p, "/api/machines/"+hid+"/metrics?period="+p); !ok {
							return
						}
						if rnd.Float64() < 0.5 {
							if _, ok := call("network "+p, "/api/machines/"+hid+"/network?period="+p); !ok {
								return
							}
						}
						if rnd.Float64() < 0.5 {
							if _, ok := call("disks "+p, "/api/machines/"+hid+"/disks?period="+p); !ok {
								return
							}
						}
					}
				}
				if !sleep(time.Duration((0.8 + 0.4*rnd.Float64()) * float64(o.Refresh))) {
					return
				}
			}
		}()
	}
	wg.Wait()
	n := issued.Load()
	if o.Requests > 0 && n > int64(o.Requests) {
		n = int64(o.Requests)
	}
	return n, time.Since(start)
}

func pickPeriod(rnd *rand.Rand) string {
	r := rnd.Float64()
	for _, p := range periods {
		if r < p.W {
			return p.P
		}
		r -= p.W
	}
	return periods[0].P
}

// probe measures one request at a time (no concurrency): each list query, machine and
// overview first with an empty cache ("cold"), then again at once ("warm").
func probe(ctx context.Context, h *httpClient, f *fleet, users []*simUser, machines []string, rec *recorder) {
	var big *simUser
	firstOf := map[*fleetClient]*simUser{}
	for _, u := range users {
		if firstOf[u.Client] == nil {
			firstOf[u.Client] = u
		}
		if u.Client.Big && big == nil {
			big = u
		}
	}
	twice := func(label, token, path string) []byte {
		st, body, d := h.get(ctx, token, path)
		rec.add(label+" · cold", d, st, body)
		for i := 0; i < 2; i++ {
			st, b, d := h.get(ctx, token, path)
			rec.add(label+" · warm", d, st, b)
		}
		return body
	}
	list := func(kind string, q url.Values) []byte {
		q.Set("limit", "50")
		return twice("list "+kind, big.Token, "/api/machines?"+q.Encode())
	}
	var page listPage
	_ = json.Unmarshal(list("default", url.Values{}), &page)
	if page.NextCursor != nil {
		list("next page", url.Values{"cursor": {*page.NextCursor}})
	}
	for _, t := range searchTerms {
		list("search", url.Values{"search": {t}})
	}
	for _, s := range []string{"online", "offline", "alert"} {
		list("filter status", url.Values{"status": {s}})
	}
	for _, o := range []string{"linux", "windows"} {
		list("filter os", url.Values{"os": {o}})
	}
	for _, c := range []string{"expiring", "expired", "revoked"} {
		list("filter certificate", url.Values{"cert_status": {c}})
	}
	for i, g := range big.Client.Groups {
		if i < 8 {
			list("filter group", url.Values{"group": {g}})
		}
	}
	list("search + filter", url.Values{"search": {"srv"}, "status": {"online"}, "os": {"linux"}})
	list("sort -last_seen", url.Values{"sort": {"-last_seen"}})
	for _, id := range machines {
		twice("details", big.Token, "/api/machines/"+id)
		for _, p := range periods {
			twice("metrics "+p.P, big.Token, "/api/machines/"+id+"/metrics?period="+p.P)
		}
		twice("network 30d", big.Token, "/api/machines/"+id+"/network?period=30d")
		twice("disks 30d", big.Token, "/api/machines/"+id+"/disks?period=30d")
	}
	for _, c := range f.Clients {
		if u := firstOf[c]; u != nil {
			label := "overview (other clients)"
			if c.Big {
				label = "overview"
			}
			twice(label, u.Token, "/api/overview")
		}
	}
}
