package localsvc_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/optralis/optralis/internal/localsvc"
)

// TestTimescaleInstalled: the local server preloads timescaledb only when both its library
// and its control file are installed next to the PostgreSQL binaries in use.
func TestTimescaleInstalled(t *testing.T) {
	prefix := t.TempDir() // a source build's layout: bin/, lib/, share/extension/
	bin := filepath.Join(prefix, "bin")
	for _, d := range []string{bin, filepath.Join(prefix, "lib"), filepath.Join(prefix, "share", "extension")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if localsvc.TimescaleInstalled(bin) {
		t.Fatal("nothing installed, yet reported installed")
	}
	if err := os.WriteFile(filepath.Join(prefix, "lib", "timescaledb.so"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if localsvc.TimescaleInstalled(bin) {
		t.Fatal("library without control file reported installed")
	}
	if err := os.WriteFile(filepath.Join(prefix, "share", "extension", "timescaledb.control"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if !localsvc.TimescaleInstalled(bin) {
		t.Fatal("library and control file present, reported not installed")
	}
}
