// Package tokenhash is how opaque secret tokens (refresh, password reset and install
// tokens) are stored and looked up: by their hash, never as they are.
package tokenhash

import (
	"crypto/sha256"
	"encoding/hex"
)

// Sum is a token's stored form: SHA-256, lower-case hex (64 characters). The tokens are
// random values of 256 bits, so a fast unsalted hash is enough: there is nothing to guess.
func Sum(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}
