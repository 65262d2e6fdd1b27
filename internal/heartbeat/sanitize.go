package heartbeat

import (
	"bytes"
	"unicode/utf8"
)

// MaxJSONDepth bounds the nesting of a collector snapshot or SMART attributes: deeper
// documents are refused (400) before PostgreSQL's jsonb parser meets them.
const MaxJSONDepth = 64

// replacement is U+FFFD as a JSON escape.
var replacement = []byte(`\ufffd`)

// sanitizeJSON returns raw with what jsonb cannot store replaced by U+FFFD: the escape
// \u0000, unpaired UTF-16 surrogate escapes and invalid UTF-8 bytes inside strings. These
// are free-form data an agent collects from the machine (a service description, a
// registry value, a vendor's SMART attribute name): the agent cannot help them, and
// refusing them would fail every heartbeat of that machine. The common case (valid UTF-8
// without any \u escape) costs one scan and no copy. depthOK is false when the document
// nests deeper than MaxJSONDepth. Bytes outside strings are left alone (the JSON check
// after this refuses them).
func sanitizeJSON(raw []byte) (out []byte, depthOK bool) {
	if !tooDeep(raw) {
		depthOK = true
	}
	if utf8.Valid(raw) && !bytes.Contains(raw, []byte(`\u`)) {
		return raw, depthOK
	}
	out = make([]byte, 0, len(raw)+8)
	inStr := false
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case !inStr:
			inStr = c == '"'
			out = append(out, c)
			i++
		case c == '"':
			inStr = false
			out = append(out, c)
			i++
		case c == '\\':
			if i+1 < len(raw) && raw[i+1] == 'u' {
				if v, ok := hex4(raw[i+2:]); ok {
					switch {
					case v == 0 || (v >= 0xDC00 && v <= 0xDFFF):
						out, i = append(out, replacement...), i+6
						continue
					case v >= 0xD800 && v <= 0xDBFF:
						if i+7 < len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' {
							if lo, ok := hex4(raw[i+8:]); ok && lo >= 0xDC00 && lo <= 0xDFFF {
								out, i = append(out, raw[i:i+12]...), i+12
								continue
							}
						}
						out, i = append(out, replacement...), i+6
						continue
					}
				}
			}
			end := min(i+2, len(raw))
			out, i = append(out, raw[i:end]...), end
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, raw[i:i+size]...)
			}
			i += size
		}
	}
	return out, depthOK
}

// tooDeep reports whether raw nests objects/arrays deeper than MaxJSONDepth.
func tooDeep(raw []byte) bool {
	depth, inStr, esc := 0, false, false
	for _, c := range raw {
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			if depth++; depth > MaxJSONDepth {
				return true
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return false
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var v rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			v = v<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			v = v<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			v = v<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}
