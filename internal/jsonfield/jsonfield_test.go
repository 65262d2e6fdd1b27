package jsonfield_test

import (
	"testing"

	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/jsonfield"
)

// Absent, null and wrongly typed members are told apart; unknown members are still refused.
func TestMembers(t *testing.T) {
	var b struct {
		A jsonfield.Member `json:"a"`
		B jsonfield.Member `json:"b"`
		C jsonfield.Member `json:"c"`
		D jsonfield.Member `json:"d"`
	}
	if err := httpx.DecodeJSONBytes([]byte(`{"a":null,"b":"5","c":1.5}`), &b); err != nil {
		t.Fatal(err)
	}
	if !b.A.Set || !b.A.Null() || b.D.Set || b.D.Null() {
		t.Errorf("a %+v d %+v", b.A, b.D)
	}
	if _, ok := b.A.String(); ok {
		t.Error("null read as a string")
	}
	if _, ok := b.B.Int(); ok {
		t.Error(`"5" read as an integer`)
	}
	if s, ok := b.B.String(); !ok || s != "5" {
		t.Errorf("b: %q %v", s, ok)
	}
	if _, ok := b.C.Int(); ok {
		t.Error("1.5 read as an integer")
	}
	if err := httpx.DecodeJSONBytes([]byte(`{"e":1}`), &b); err == nil {
		t.Error("unknown member accepted")
	}
	for in, ok := range map[string]bool{" x ": true, "": false, "a\tb": false, "\xff": false, "toolong": false} {
		if _, err := jsonfield.Text(in, 1, 5); (err == nil) != ok {
			t.Errorf("Text(%q): %v", in, err)
		}
	}
}
