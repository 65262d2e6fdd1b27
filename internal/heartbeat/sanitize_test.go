package heartbeat

import (
	"strings"
	"testing"
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

func TestSanitizeJSON(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"a":"b"}`, `{"a":"b"}`},
		{`{"a":"x\u0000y"}`, `{"a":"x\ufffdy"}`},
		{`{"a\u0000":1}`, `{"a\ufffd":1}`},
		{`{"a":"\\u0000"}`, `{"a":"\\u0000"}`},           // an escaped backslash, not an escape
		{`{"a":"\ud83d\ude00"}`, `{"a":"\ud83d\ude00"}`}, // a surrogate pair is kept
		{`{"a":"\ud83dx"}`, `{"a":"\ufffdx"}`},           // unpaired high
		{`{"a":"\ude00"}`, `{"a":"\ufffd"}`},             // unpaired low
		{`{"a":"\u00e9\u0041"}`, `{"a":"\u00e9\u0041"}`}, // ordinary escapes
		{"{\"a\":\"x\xffy\"}", "{\"a\":\"x\uFFFDy\"}"},   // invalid UTF-8
		{"{\"a\":\"\xc3\"}", "{\"a\":\"\uFFFD\"}"},       // truncated sequence
		{"{\"a\":\"é\"}", "{\"a\":\"é\"}"},               // valid UTF-8 untouched
		{`{"a":"\u000`, `{"a":"\u000`},                   // truncated: left for the JSON check
		{`{"a":"\"\u0000"}`, `{"a":"\"\ufffd"}`},         // after an escaped quote
		{`{"a":["\u0000",{"b":"\u0000"}]}`, `{"a":["\ufffd",{"b":"\ufffd"}]}`},
	} {
		got, ok := sanitizeJSON([]byte(c.in))
		if string(got) != c.want || !ok {
			t.Errorf("sanitizeJSON(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
	deep := strings.Repeat("[", MaxJSONDepth+1) + strings.Repeat("]", MaxJSONDepth+1)
	if _, ok := sanitizeJSON([]byte(`{"a":` + deep + `}`)); ok {
		t.Error("too deep accepted")
	}
	if _, ok := sanitizeJSON([]byte(`{"a":"` + strings.Repeat("[", 100) + `"}`)); !ok {
		t.Error("brackets inside a string counted as nesting")
	}
}

// FuzzSanitizeJSON: whatever comes in, what comes out is valid UTF-8 without a \u0000 or
// unpaired surrogate escape, and valid JSON stays valid JSON.
func FuzzSanitizeJSON(f *testing.F) {
	for _, s := range []string{`{"a":"\u0000"}`, "{\"a\":\"\xff\"}", `{"a":"\ud800"}`, `{"a":"\\u0000"}`, `[1,"\udc00\ud800\udc00"]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, _ := sanitizeJSON(in)
		if json.Valid(in) {
			if !utf8.Valid(out) {
				t.Fatalf("invalid UTF-8 left: %q", out)
			}
			if !json.Valid(out) {
				t.Fatalf("valid JSON %q became invalid %q", in, out)
			}
			var v any
			if err := json.Unmarshal(out, &v); err != nil {
				t.Fatal(err)
			}
			if strings.ContainsRune(jsonString(v), 0) || !utf8.ValidString(jsonString(v)) {
				t.Fatalf("%q decodes to NUL or invalid UTF-8", out)
			}
		}
	})
}

// jsonString concatenates every string of a decoded JSON value (keys included).
func jsonString(v any) string {
	var b strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			b.WriteString(x)
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for k, e := range x {
				b.WriteString(k)
				walk(e)
			}
		}
	}
	walk(v)
	return b.String()
}
