package tokenhash_test

import (
	"testing"

	"github.com/optralis/optralis/internal/tokenhash"
)

func TestSum(t *testing.T) {
	// SHA-256("abc"), FIPS 180-2 appendix B.1.
	if got := tokenhash.Sum("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("Sum(abc) = %s", got)
	}
}
