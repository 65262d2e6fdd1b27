package adminfn

import (
	"github.com/optralis/optralis/internal/alertrules"
	"github.com/optralis/optralis/internal/alerts"
	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/maintenance"
)

// alertingHandlers binds the alert rules, maintenance windows and alerts (issue 13).
func alertingHandlers(core app.Core) app.Handlers {
	rd := alertrules.Deps{Pool: core.Pool, Cache: core.Cache(), Clock: core.Clock, Logger: core.Logger}
	wd := maintenance.Deps{Pool: core.Pool, Clock: core.Clock, Logger: core.Logger}
	ad := alerts.Deps{Pool: core.Pool, Clock: core.Clock, Logger: core.Logger}
	return app.Handlers{
		"GET /api/alert-rules":                 alertrules.HandleList(rd),
		"POST /api/alert-rules":                alertrules.HandleCreate(rd),
		"GET /api/alert-rules/{id}":            alertrules.HandleGet(rd),
		"PATCH /api/alert-rules/{id}":          alertrules.HandleUpdate(rd),
		"DELETE /api/alert-rules/{id}":         alertrules.HandleDelete(rd),
		"GET /api/maintenance-windows":         maintenance.HandleList(wd),
		"POST /api/maintenance-windows":        maintenance.HandleCreate(wd),
		"GET /api/maintenance-windows/{id}":    maintenance.HandleGet(wd),
		"PATCH /api/maintenance-windows/{id}":  maintenance.HandleUpdate(wd),
		"DELETE /api/maintenance-windows/{id}": maintenance.HandleDelete(wd),
		"GET /api/alerts":                      alerts.HandleList(ad),
		"GET /api/alerts/{id}":                 alerts.HandleGet(ad),
		"POST /api/alerts/{id}/acknowledge":    alerts.HandleAcknowledge(ad),
	}
}
