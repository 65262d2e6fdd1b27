package winbuilds

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/apperr"
)

// DefaultBaseURL is the endoflife.date API (ENDOFLIFE_API_URL overrides it).
const DefaultBaseURL = "https://endoflife.date/api"

// MinBuild is the oldest supported build: Windows 10 LTSC 2019 / Server 2019 (spec).
const MinBuild = 17763

// maxBody bounds an upstream answer (windows.json is about 20 KB).
const maxBody = 2 << 20

// Source is the endoflife.date API: windows.json (client editions) and
// windows-server.json (server releases).
type Source struct {
	BaseURL string       // DefaultBaseURL when empty
	Client  *http.Client // its Timeout bounds each fetch; a 10 s client when nil
}

// Cycle is one release cycle in the API's format, e.g.
//
//	{"cycle":"11-24h2-w","releaseLabel":"11 24H2 (W)","releaseDate":"2024-10-01",
//	 "eol":"2026-10-13","latest":"10.0.26100","link":"...","lts":false,"support":"2026-10-13"}
//
// eol, lts and support are a date or a boolean; only the fields used are decoded.
type Cycle struct {
	Cycle       string `json:"cycle"`
	ReleaseDate string `json:"releaseDate"`
	Latest      string `json:"latest"`
}

// UnmarshalJSON accepts cycle and latest as strings or numbers (the API uses both across
// products) and nothing else.
func (c *Cycle) UnmarshalJSON(b []byte) error {
	var raw struct {
		Cycle       json.RawMessage `json:"cycle"`
		ReleaseDate *string         `json:"releaseDate"`
		Latest      json.RawMessage `json:"latest"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	var err error
	if c.Cycle, err = scalar(raw.Cycle); err != nil || c.Cycle == "" {
		return fmt.Errorf("cycle: not a string")
	}
	if c.Latest, err = scalar(raw.Latest); err != nil {
		return fmt.Errorf("cycle %q: latest: %w", c.Cycle, err)
	}
	if raw.ReleaseDate != nil {
		c.ReleaseDate = *raw.ReleaseDate
	}
	return nil
}

func scalar(b json.RawMessage) (string, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return "", nil
	}
	if b[0] == '"' {
		var s string
		err := json.Unmarshal(b, &s)
		return s, err
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return "", errors.New("not a string or a number")
	}
	return n.String(), nil
}

func upstream(format string, args ...any) error {
	return apperr.New(apperr.Upstream, "endoflife.date: "+format, args...)
}

// Fetch reads both files. Any failure — unreachable, timeout, non-200, malformed JSON —
// is an Upstream error (502) naming what went wrong.
func (s Source) Fetch(ctx context.Context) (client, server []Cycle, err error) {
	if client, err = s.get(ctx, "windows.json"); err != nil {
		return nil, nil, err
	}
	if server, err = s.get(ctx, "windows-server.json"); err != nil {
		return nil, nil, err
	}
	return client, server, nil
}

func (s Source) get(ctx context.Context, name string) ([]Cycle, error) {
	base := strings.TrimSuffix(s.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	hc := s.Client
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/"+name, nil)
	if err != nil {
		return nil, upstream("bad API URL %q", base)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return nil, upstream("%s did not answer in time", name)
		}
		return nil, upstream("%s could not be fetched", name)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, upstream("%s answered HTTP %d", name, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		if isTimeout(err) {
			return nil, upstream("%s did not answer in time", name)
		}
		return nil, upstream("%s could not be read", name)
	}
	if len(body) > maxBody {
		return nil, upstream("%s is larger than %d bytes", name, maxBody)
	}
	var cycles []Cycle
	if err := json.Unmarshal(body, &cycles); err != nil {
		return nil, upstream("%s is not the expected JSON (a list of release cycles)", name)
	}
	return cycles, nil
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

var (
	// 10-22h2, 10-1809-e-lts, 11-24h2-w, 11-24h2-iot-lts, ...
	clientCycle = regexp.MustCompile(`^(10|11)-([0-9]{4}|[0-9]{2}h[12])((?:-[a-z]+)*)$`)
	// 2025, 2022, 2019, 2016 (semi-annual channel releases such as 1809 or 20h2 do not match)
	serverCycle = regexp.MustCompile(`^(20[0-9]{2})$`)
)

// ltscYear names Windows LTSC releases by their feature version.
func ltscYear(release string) (string, bool) {
	switch release {
	case "10-1507":
		return "2015", true
	case "10-1607":
		return "2016", true
	case "10-1809":
		return "2019", true
	case "10-21h2":
		return "2021", true
	case "11-24h2":
		return "2024", true
	}
	return "", false
}

type candidate struct {
	Build
	priority int
}

// Parse classifies the cycles (client from "10-…"/"11-…", server from a year), keeps
// builds from MinBuild up, drops IoT and Embedded editions, and names them as the
// dashboard shows them. Several cycles share a build (11-24h2-w, -e and -e-lts are all
// 26100): Windows 10 builds take their LTSC name (1809 and 21H2 live on as LTSC 2019 and
// 2021), Windows 11 builds their feature-update name. Cycles of other shapes are ignored;
// a cycle of a known shape whose latest version cannot be read is an error.
func Parse(cycles []Cycle) ([]Build, error) {
	best := map[string]candidate{}
	for _, c := range cycles {
		var cand candidate
		cycle := strings.ToLower(strings.TrimSpace(c.Cycle))
		if m := clientCycle.FindStringSubmatch(cycle); m != nil {
			major, version, editions := m[1], m[2], strings.Split(strings.TrimPrefix(m[3], "-"), "-")
			if containsAny(editions, "iot", "embedded") {
				continue
			}
			lts := containsAny(editions, "lts", "ltsc")
			cand.OSType = "client"
			if lts {
				year, ok := ltscYear(major + "-" + version)
				if !ok && len(c.ReleaseDate) >= 4 {
					year = c.ReleaseDate[:4]
				}
				cand.Name = "Windows " + major + " LTSC " + year
			} else {
				cand.Name = "Windows " + major + " (" + strings.ToUpper(version) + ")"
			}
			cand.priority = 1
			if lts == (major == "10") {
				cand.priority = 2
			}
		} else if m := serverCycle.FindStringSubmatch(cycle); m != nil {
			if y, _ := strconv.Atoi(m[1]); y < 2008 {
				continue // semi-annual channel versions such as 2004
			}
			cand.OSType, cand.Name, cand.priority = "server", "Windows Server "+m[1], 1
		} else {
			continue
		}
		build, err := buildNumber(c.Latest)
		if err != nil {
			return nil, upstream("cycle %q has no readable build in latest %q", c.Cycle, c.Latest)
		}
		if build < MinBuild {
			continue
		}
		cand.BuildNumber = build
		if c.ReleaseDate != "" {
			d, err := time.Parse("2006-01-02", c.ReleaseDate)
			if err != nil {
				return nil, upstream("cycle %q has a malformed releaseDate %q", c.Cycle, c.ReleaseDate)
			}
			cand.ReleaseDate = &d
		}
		k := cand.OSType + "/" + strconv.Itoa(build)
		if old, ok := best[k]; !ok || cand.priority > old.priority ||
			(cand.priority == old.priority && earlier(cand.ReleaseDate, old.ReleaseDate)) {
			best[k] = cand
		}
	}
	out := make([]Build, 0, len(best))
	for _, c := range best {
		out = append(out, c.Build)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].OSType != out[j].OSType {
			return out[i].OSType < out[j].OSType
		}
		return out[i].BuildNumber < out[j].BuildNumber
	})
	return out, nil
}

func containsAny(list []string, want ...string) bool {
	for _, l := range list {
		for _, w := range want {
			if l == w {
				return true
			}
		}
	}
	return false
}

func earlier(a, b *time.Time) bool { return a != nil && (b == nil || a.Before(*b)) }

// buildNumber reads the build from a version such as "10.0.26100" (or "10.0.26100.2894").
func buildNumber(v string) (int, error) {
	parts := strings.Split(strings.TrimSpace(v), ".")
	if len(parts) < 3 {
		return 0, errors.New("not a Windows version")
	}
	n, err := strconv.Atoi(parts[2])
	if err != nil || n <= 0 {
		return 0, errors.New("not a Windows version")
	}
	return n, nil
}
