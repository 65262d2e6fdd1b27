package db

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/optralis/optralis/internal/apperr"
)

// SQLSTATE codes the application handles (PostgreSQL "Appendix A. Error Codes"), and the
// project's own. Storage code names these, never the digits, and never matches messages.
const (
	UniqueViolation           = "23505" // unique_violation
	ForeignKeyViolation       = "23503" // foreign_key_violation
	CheckViolation            = "23514" // check_violation
	NotNullViolation          = "23502" // not_null_violation
	InvalidTextRepresentation = "22P02" // invalid_text_representation (e.g. a malformed uuid)
	NumericValueOutOfRange    = "22003" // numeric_value_out_of_range
	StringDataRightTruncation = "22001" // string_data_right_truncation (value too long)
	UntranslatableCharacter   = "22P05" // untranslatable_character (\u0000 in a jsonb value)
	CharacterNotInRepertoire  = "22021" // character_not_in_repertoire (NUL or invalid UTF-8 in text)
	SerializationFailure      = "40001" // serialization_failure
	DeadlockDetected          = "40P01" // deadlock_detected
	LockNotAvailable          = "55P03" // lock_not_available (also TimescaleDB's concurrent refresh)
	QueryCanceled             = "57014" // query_canceled (statement_timeout, cancel request)
	// AgentRefused is raised by optralis_assert_agent (migrations 00004, 00005) when a
	// presented certificate is not its machine's active one; the message names the reason.
	AgentRefused = "OA401"
	// ClientDisabled is raised by optralis_assert_agent (migration 00006) when the agent's
	// certificate is fine but its client has been disabled: the agent is refused (403).
	ClientDisabled = "OA403"
	// LicenceExpired is raised by optralis_assert_licence (migration 00011) when the
	// agent's client's licence expired longer ago than the grace period (402).
	LicenceExpired = "OA402"
	// NoRows is not a SQLSTATE: it stands for pgx.ErrNoRows (a query that returned no
	// row) wherever a code is expected, so Error maps it like the others.
	NoRows = "no_rows"
)

// IsNoRows reports whether err is pgx.ErrNoRows: a QueryRow that found nothing.
func IsNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

// Code returns err's SQLSTATE, NoRows for pgx.ErrNoRows, or "" for any other error.
func Code(err error) string {
	if IsNoRows(err) {
		return NoRows
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// Transient reports errors a retry of the whole transaction may cure: serialization
// failures, deadlocks and lock timeouts.
func Transient(err error) bool {
	switch Code(err) {
	case SerializationFailure, DeadlockDetected, LockNotAvailable:
		return true
	}
	return false
}

// Case maps one code (a SQLSTATE constant or NoRows) to the error a storage function
// returns for it, with the domain's own message.
type Case struct {
	Code string
	Err  *apperr.Error
}

// On is a Case.
func On(code string, err *apperr.Error) Case { return Case{Code: code, Err: err} }

// Error is the one mapping from database errors to what storage functions return. It
// picks the first case whose code matches err, else the default for the named codes
// (Default); the result wraps both that *apperr.Error (what the client sees, found by
// apperr.As and errors.Is) and err (the database's text, for the log), prefixed by op.
// A database outage (Unreachable, or a deadline spent waiting for it) is ErrUnavailable
// whatever the cases say: a 503, never a 500. An error with no mapping (a bug in the SQL...) is returned wrapped
// with op only: handlers log it and answer a generic 500. nil stays nil.
func Error(err error, op string, cases ...Case) error {
	if err == nil {
		return nil
	}
	if _, ok := apperr.As(err); ok {
		return err // already mapped (a nested storage call)
	}
	if unavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	}
	code := Code(err)
	if code != "" {
		for _, c := range cases {
			if c.Code == code {
				return fmt.Errorf("%s: %w: %w", op, c.Err, err)
			}
		}
		if d := Default(code); d != nil {
			return fmt.Errorf("%s: %w: %w", op, d, err)
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Default is the client error for a named code when the storage function gave no case of
// its own, or nil for codes that are internal errors.
func Default(code string) *apperr.Error {
	switch code {
	case NoRows:
		return apperr.New(apperr.NotFound, "not found")
	case UniqueViolation:
		return apperr.New(apperr.Conflict, "already exists")
	case ForeignKeyViolation:
		return apperr.New(apperr.Conflict, "a related record does not exist or is still in use")
	case CheckViolation, NumericValueOutOfRange, StringDataRightTruncation:
		return apperr.New(apperr.Invalid, "a value is out of range for its column")
	case NotNullViolation:
		return apperr.New(apperr.Invalid, "a required value is missing")
	case InvalidTextRepresentation:
		return apperr.New(apperr.Invalid, "a value is malformed")
	case UntranslatableCharacter, CharacterNotInRepertoire:
		// A safety net: handlers check text before it reaches the database, but no path
		// may answer 500 for bytes a client sent.
		return apperr.New(apperr.Invalid, "a value contains bytes the database cannot store")
	case SerializationFailure, DeadlockDetected, LockNotAvailable, QueryCanceled:
		return apperr.New(apperr.Unavailable, "the database is busy; retry later")
	case AgentRefused:
		return apperr.New(apperr.Unauthenticated, "client certificate not accepted")
	case ClientDisabled:
		return apperr.New(apperr.Forbidden, "this client's service is disabled")
	}
	return nil
}
