package localsvc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// Redis is a redis-server process of ours. It keeps nothing on disk: it is a cache.
type Redis struct {
	Port int
	cmd  *exec.Cmd
	done chan struct{}
}

// RedisAvailable reports whether redis-server is installed.
func RedisAvailable() bool {
	_, err := exec.LookPath("redis-server")
	return err == nil
}

// EnsureRedisInstalled installs Debian's redis-server when missing and we are root.
func EnsureRedisInstalled(ctx context.Context) error {
	if RedisAvailable() {
		return nil
	}
	if os.Geteuid() != 0 {
		return errors.New("redis-server is not installed: sudo apt-get install -y redis-server")
	}
	return aptInstall(ctx, "redis-server")
}

// StartRedis runs redis-server on 127.0.0.1:port (0 picks a free one) until Stop.
func StartRedis(ctx context.Context, port int) (*Redis, error) {
	if port == 0 {
		var err error
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--maxmemory", "128mb", "--maxmemory-policy", "allkeys-lru")
	cmd.Dir = os.TempDir()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("redis-server: %w", err)
	}
	r := &Redis{Port: port, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(r.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.addr(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return r, nil
		}
		select {
		case <-r.done:
			return nil, fmt.Errorf("redis-server exited at start-up (port %d in use?)", port)
		case <-ctx.Done():
			r.Stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.Stop()
			return nil, errors.New("redis-server did not start within 10s")
		}
	}
}

func (r *Redis) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port)) }

// URL is the redis:// address of the server.
func (r *Redis) URL() string { return "redis://" + r.addr() + "/0" }

// Stop terminates the server and waits for it.
func (r *Redis) Stop() {
	if r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(os.Interrupt)
	}
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}
