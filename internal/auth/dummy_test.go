package auth

import (
	"errors"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// The production service (no Hasher option) is bcrypt at BcryptCost, and logins for an
// unknown email compare against a constant dummy of that same cost: a real comparison,
// as slow as a known user's, with no stopwatch needed to tell.
func TestProductionDummyHashIsARealCost12Hash(t *testing.T) {
	s := New(Options{})
	if s.hasher != (Bcrypt{Cost: BcryptCost}) {
		t.Fatalf("default hasher %#v, want bcrypt at cost %d", s.hasher, BcryptCost)
	}
	if s.dummyHash != dummyHash {
		t.Fatal("the default service does not use the constant dummy hash")
	}
	if cost, err := bcrypt.Cost([]byte(dummyHash)); err != nil || cost != BcryptCost {
		t.Fatalf("dummy hash cost %d (%v), want %d", cost, err, BcryptCost)
	}
	// Well-formed: the comparison runs the whole key schedule and only then mismatches.
	if err := s.hasher.Compare(dummyHash, "whatever"); !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
		t.Fatalf("comparing against the dummy: %v, want a mismatch", err)
	}
}
