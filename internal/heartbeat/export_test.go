package heartbeat

import "github.com/jackc/pgx/v5"

// SetBeforeSend lets a test add statements to every heartbeat's batch.
func SetBeforeSend(s *Service, f func(*pgx.Batch)) { s.beforeSend = f }
