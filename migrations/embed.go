// Package migrations holds the SQL schema, embedded into every binary that migrates.
//
// Files named *_timescale.sql apply only to databases in "timescale" mode and *_postgres.sql
// only to those in "postgres" mode; internal/migrate picks the family.
package migrations

import "embed"

// FS is the migration files.
//
//go:embed *.sql
var FS embed.FS
