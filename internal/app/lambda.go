package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"

	"github.com/optralis/optralis/internal/awsenv"
	"github.com/optralis/optralis/internal/awssecrets"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/logging"
)

// Function is one assembled Lambda: an HTTP handler or a job, its logger, and what it
// holds open.
type Function struct {
	Handler http.Handler // HTTP functions
	Job     JobFunc      // scheduled functions
	Logger  *slog.Logger
	Close   func()
}

// OpenLambda is a function's cold start: a JSON logger on stdout tagged with the function,
// the environment with VAR_SECRET_ARN references to Secrets Manager resolved (the stack
// never puts a secret in the template), the settings every function reads (DATABASE_URL,
// REDIS_URL, CORS_ALLOWED_ORIGINS), and connections sized for one Lambda instance. more
// reads the function's own settings from the same environment; a function asks only for
// what it uses. Errors name the variable at fault; the caller's main exits on them.
func OpenLambda(ctx context.Context, name string, getenv func(string) string, stdout io.Writer, more func(getenv func(string) string) error) (Core, error) {
	logger := logging.New(stdout, slog.LevelInfo).With("function", name)
	env := awssecrets.New(ctx, getenv, awssecrets.SDKClient(awsenv.Loader(getenv)))
	url, _, err := config.Database(env.Getenv)
	var redisURL string
	var cors []string
	if err == nil {
		redisURL, err = config.Cache(env.Getenv)
	}
	if err == nil {
		cors, err = config.CORS(env.Getenv)
	}
	if err == nil && more != nil {
		err = more(env.Getenv)
	}
	if serr := env.Err(); serr != nil {
		err = serr // the cause, rather than the "missing variable" it led to
	}
	if err != nil {
		return Core{}, err
	}
	return OpenCore(ctx, url, redisURL, cors, db.LambdaProfile(), logger)
}

// LambdaEnv is a function's environment with Secrets Manager references resolved, for
// functions that need less than OpenLambda opens (migrate).
func LambdaEnv(ctx context.Context, getenv func(string) string) *awssecrets.Env {
	return awssecrets.New(ctx, getenv, awssecrets.SDKClient(awsenv.Loader(getenv)))
}

// OpenHTTP is the cold start of an HTTP function: OpenLambda, then build its handler.
func OpenHTTP(ctx context.Context, name string, getenv func(string) string, stdout io.Writer,
	more func(getenv func(string) string) error, build func(Core) (http.Handler, error)) (Function, error) {
	core, err := OpenLambda(ctx, name, getenv, stdout, more)
	if err != nil {
		return Function{}, err
	}
	h, err := build(core)
	if err != nil {
		core.Close()
		return Function{}, err
	}
	return Function{Handler: h, Logger: core.Logger, Close: core.Close}, nil
}

// OpenJob is the cold start of a scheduled function: OpenLambda, then build its job.
func OpenJob(ctx context.Context, name string, getenv func(string) string, stdout io.Writer, build func(Core) JobFunc) (Function, error) {
	core, err := OpenLambda(ctx, name, getenv, stdout, nil)
	if err != nil {
		return Function{}, err
	}
	return Function{Job: build(core), Logger: core.Logger, Close: core.Close}, nil
}
