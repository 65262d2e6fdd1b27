package db_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// serverClock matches SQL that reads the database server's clock.
var serverClock = regexp.MustCompile(`(?i)\b(now\s*\(\s*\)|current_timestamp|current_date|current_time|localtimestamp|localtime|transaction_timestamp\s*\(|statement_timestamp\s*\(|clock_timestamp\s*\(|timeofday\s*\()`)

// schemaDefault is a column DEFAULT NOW(): the schema's safety net for manual SQL, which
// the application's writes never rely on (they set every timestamp themselves).
var schemaDefault = regexp.MustCompile(`(?i)\bDEFAULT\s+NOW\s*\(\s*\)`)

// nowExceptions lists the SQL allowed to read the server's clock, file → why. Empty today:
// add an entry only with the reason, and the reason in a comment next to the SQL.
var nowExceptions = map[string]string{}

// One clock (GUIDE §2): no application SQL reads the database server's clock — neither the
// Go code's SQL strings nor the migrations' functions and statements — so a test with a
// fixed clock sees fixed times and a transaction's rows share db.Tx.Now. Tests (*_test.go)
// may do what they like in their own SQL.
func TestNoServerClockInApplicationSQL(t *testing.T) {
	root := filepath.Join("..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found from %s: %v", root, err)
	}
	var checked int
	report := func(path string, line int, text string) {
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if _, ok := nowExceptions[rel]; ok {
			return
		}
		t.Errorf("%s:%d reads the database server's clock: %q — pass the application's time (db.Tx.Now, the injected clock) instead", rel, line, strings.TrimSpace(text))
	}
	for _, dir := range []string{"internal", "cmd", "functions", "migrations"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			switch {
			case strings.HasSuffix(path, "_test.go"):
				return nil
			case strings.HasSuffix(path, ".go"):
				checked++
				return checkGo(path, report)
			case strings.HasSuffix(path, ".sql"):
				checked++
				return checkSQL(path, report)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked < 50 {
		t.Fatalf("only %d files checked: the walk missed the code", checked)
	}
}

// checkGo reports server-clock SQL in the file's string literals.
func checkGo(path string, report func(string, int, string)) error {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		return err
	}
	ast.Inspect(f, func(n ast.Node) bool {
		lit, ok := n.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		s, err := strconv.Unquote(lit.Value)
		if err != nil {
			return true
		}
		for i, line := range strings.Split(stripSQLComments(s), "\n") {
			if serverClock.MatchString(line) {
				report(path, fset.Position(lit.Pos()).Line+i, line)
			}
		}
		return true
	})
	return nil
}

// checkSQL reports server-clock SQL in a migration, column defaults aside.
func checkSQL(path string, report func(string, int, string)) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for i, line := range strings.Split(stripSQLComments(string(b)), "\n") {
		if serverClock.MatchString(schemaDefault.ReplaceAllString(line, "")) {
			report(path, i+1, line)
		}
	}
	return nil
}

// stripSQLComments blanks "-- ..." comments, keeping the line count.
func stripSQLComments(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if j := strings.Index(l, "--"); j >= 0 {
			lines[i] = l[:j]
		}
	}
	return strings.Join(lines, "\n")
}

// The check itself catches what it must, and lets through what it may.
func TestServerClockPattern(t *testing.T) {
	for _, bad := range []string{"updated_at = now()", "VALUES ($1, NOW ())", "expires_at > CURRENT_TIMESTAMP", "clock_timestamp()"} {
		if !serverClock.MatchString(bad) {
			t.Errorf("missed %q", bad)
		}
	}
	for _, ok := range []string{"updated_at = $3", "last_seen = GREATEST(m.last_seen, $2)", "known_at", "snow()"} {
		if serverClock.MatchString(ok) {
			t.Errorf("flagged %q", ok)
		}
	}
	if line := schemaDefault.ReplaceAllString("created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),", ""); serverClock.MatchString(line) {
		t.Error("a column default is flagged")
	}
	if serverClock.MatchString(stripSQLComments("-- the spec's WHERE expires_at > NOW() cannot be built")) {
		t.Error("a comment is flagged")
	}
}

// defaultNowColumns reads the migrations' CREATE TABLEs: table → its DEFAULT NOW() columns.
func defaultNowColumns(t *testing.T, root string) map[string][]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "migrations", "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	table := regexp.MustCompile(`(?is)CREATE TABLE (\w+)\s*\((.*?)\n\);`)
	out := map[string][]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range table.FindAllStringSubmatch(stripSQLComments(string(b)), -1) {
			for _, line := range strings.Split(m[2], "\n") {
				if fields := strings.Fields(line); len(fields) > 0 && schemaDefault.MatchString(line) {
					out[strings.ToLower(m[1])] = append(out[strings.ToLower(m[1])], strings.ToLower(fields[0]))
				}
			}
		}
	}
	return out
}

// defaultExceptions are Go files whose INSERTs may leave a DEFAULT NOW() column to the
// schema, file → why.
var defaultExceptions = map[string]string{
	// Test fixtures (a client and a machine for a test to use): no application write.
	"internal/testenv/fixtures.go": "test fixtures",
}

// The schema's DEFAULT NOW() is a safety net for manual SQL only: every INSERT the
// application issues names each such column of its table (and sets it from the Go clock;
// TestNoServerClockInApplicationSQL makes sure it is not set with now()).
func TestApplicationInsertsSetTheirTimestamps(t *testing.T) {
	root := filepath.Join("..", "..")
	defaults := defaultNowColumns(t, root)
	if len(defaults["activity_logs"]) == 0 || len(defaults["machines"]) < 3 {
		t.Fatalf("DEFAULT NOW() columns not found in the migrations: %v", defaults)
	}
	insert := regexp.MustCompile(`(?is)INSERT\s+INTO\s+(\w+)(?:\s+AS\s+\w+)?\s*\(([^)]*)\)`)
	var inserts int
	for _, dir := range []string{"internal", "cmd", "functions"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			if _, ok := defaultExceptions[filepath.ToSlash(rel)]; ok {
				return nil
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					return true
				}
				for _, m := range insert.FindAllStringSubmatch(s, -1) {
					inserts++
					named := map[string]bool{}
					for _, c := range strings.Split(m[2], ",") {
						named[strings.ToLower(strings.TrimSpace(c))] = true
					}
					for _, col := range defaults[strings.ToLower(m[1])] {
						if !named[col] {
							t.Errorf("%s:%d: INSERT INTO %s leaves %s to the schema's DEFAULT NOW(): set it from the application's clock",
								filepath.ToSlash(rel), fset.Position(lit.Pos()).Line, m[1], col)
						}
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if inserts < 15 {
		t.Fatalf("only %d INSERTs found: the scan missed the code", inserts)
	}
}
