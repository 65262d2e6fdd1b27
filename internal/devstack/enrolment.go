package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/seed"
)

// DemoUserEmail is the demo client's administrator in the local stack: install tokens are
// created by a client's user, and the platform admin belongs to no client.
const DemoUserEmail = "demo@optralis.local"

// enrolmentDefaults points enrolment at this stack unless the environment chose otherwise.
func enrolmentDefaults(e config.Enrolment, apiURL, agentURL string) config.Enrolment {
	if e.PublicAPIURL == "" {
		e.PublicAPIURL = apiURL
	}
	if e.AgentEndpoint == "" {
		e.AgentEndpoint = agentURL
	}
	return e
}

type demoUser struct {
	Email    string
	Password string // set only when created now: shown once
}

// ensureDemoUser creates the demo client's administrator on first run, with a generated
// password printed once. It is a local-stack account, so it need not change its password
// at first login (the platform admin still must).
func ensureDemoUser(ctx context.Context, core app.Core, a *auth.Service, clientID string) (demoUser, error) {
	u := demoUser{Email: DemoUserEmail}
	var id string
	err := core.Pool.QueryRow(ctx, `SELECT id FROM users WHERE LOWER(email) = LOWER($1)`, DemoUserEmail).Scan(&id)
	if err == nil {
		return u, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return u, fmt.Errorf("demo user: %w", err)
	}
	if u.Password, err = seed.GeneratePassword(20); err != nil {
		return u, err
	}
	if _, err := a.CreateUser(ctx, auth.NewUser{Email: DemoUserEmail, Name: "Demo administrator",
		Role: principal.RoleAdmin, ClientID: clientID, Password: u.Password}); err != nil {
		return u, fmt.Errorf("demo user: %w", err)
	}
	return u, nil
}

func enrolBanner(out io.Writer, st Stack, u demoUser) {
	who, pw := fmt.Sprintf("%s, password: %s (shown once)", u.Email, u.Password), u.Password
	if pw == "" {
		who, pw = u.Email+" (existing account; its password was shown at its first run)", "<password>"
	}
	fmt.Fprintf(out, `
Enrol a Linux machine, as the demo client's admin %s
  ACCESS=$(curl -s %s/api/auth/login -H 'Content-Type: application/json' \
    -d '{"email":"%s","password":"%s"}' | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
  curl -s %s/api/install-tokens -H "Authorization: Bearer $ACCESS" \
    -H 'Content-Type: application/json' -d '{"name":"my machine"}'
  Run the answer's install_command on the machine, or try it here without root:
    curl -fsSL %s/install.sh | OPTRALIS_ROOT=/tmp/optralis-try sh -s -- '<token>'
`, who, st.APIURL, u.Email, pw, st.APIURL, st.APIURL)
}
