// Package pgtest gives tests a real PostgreSQL: a fresh, empty database per
// call to URL, on a shared throwaway cluster that the test binary starts on
// first use and always removes at exit.
//
// The cluster is, in order of preference:
//
//   - the server TRELLIS_TEST_DATABASE_URL names (databases are created on it
//     and dropped afterwards), or
//   - a throwaway PostgreSQL started with initdb and pg_ctl in a temporary
//     directory on a free loopback port, with fsync off. When the test runs
//     as root the server runs as the postgres system user (PostgreSQL refuses
//     to run as root).
//
// A package that uses URL must run its tests through Main:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// Missing server binaries fail the test with a message saying what to
// install; pgtest never skips.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/lib/pq" // the database/sql driver
)

// EnvURL names the environment variable that points the tests at an existing
// server instead of a throwaway cluster. Its user must be allowed to create
// databases.
const EnvURL = "TRELLIS_TEST_DATABASE_URL"

// installHint says what to do when no server binaries are found.
const installHint = "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH or under /usr/lib/postgresql/*/bin: " +
	"install them (Debian/Ubuntu: apt-get install postgresql-15) or set " + EnvURL + " to a server the tests may create databases on"

var (
	sharedMu  sync.Mutex
	shared    *Cluster
	sharedErr error
	// adminURL is the URL of the server named by EnvURL, if any.
	dbCounter int
)

// Main runs the tests of a package that uses pgtest and then stops and
// removes the shared cluster, if one was started, whatever the outcome
// (failures and panics included). It calls os.Exit.
func Main(m *testing.M) {
	code := run(m)
	os.Exit(code)
}

func run(m *testing.M) (code int) {
	defer func() {
		sharedMu.Lock()
		defer sharedMu.Unlock()
		if shared != nil {
			shared.destroy()
			shared = nil
		}
	}()
	return m.Run()
}

// URL returns the DSN of a new, empty database on the shared cluster. The
// database is dropped when the test ends.
func URL(t testing.TB) string {
	t.Helper()
	c := sharedCluster(t)
	return c.NewDatabase(t)
}

func sharedCluster(t testing.TB) *Cluster {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		if u := os.Getenv(EnvURL); u != "" {
			shared = &Cluster{url: u, external: true}
		} else {
			shared, sharedErr = startCluster()
		}
	}
	if sharedErr != nil {
		t.Fatalf("pgtest: %v", sharedErr)
	}
	return shared
}

// Cluster is a PostgreSQL server the tests use: the shared one, or a
// private one from NewCluster that a test may stop and start.
type Cluster struct {
	url      string // maintenance database URL (database "postgres")
	external bool   // named by EnvURL: never stopped

	dir      string   // data and socket directory (throwaway clusters)
	settings []string // extra server settings, name=value
	port     int
	bin      string // directory of initdb, pg_ctl
	asUser   string // system user to run as ("" = ourselves)
	mu       sync.Mutex
	running  bool
}

// NewCluster starts a private throwaway cluster for one test, which may stop
// and start it (an outage test). It is removed when the test ends. It always
// starts a local cluster, even when EnvURL is set, because stopping a shared
// server is not an option. settings are server settings ("name=value", e.g.
// "max_connections=10") that override pgtest's own.
func NewCluster(t testing.TB, settings ...string) *Cluster {
	t.Helper()
	c, err := startCluster(settings...)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(c.destroy)
	return c
}

// NewStandby starts a hot standby of c for one test: a base backup of c
// taken with pg_basebackup -R (so it streams c's WAL from then on) in a new
// directory, started on its own free loopback port with hot_standby_feedback
// on. c must be a private cluster (NewCluster). settings override pgtest's
// own, as for NewCluster. The standby is read-only; it may be stopped and
// started like any Cluster and is removed when the test ends.
func (c *Cluster) NewStandby(t testing.TB, settings ...string) *Cluster {
	t.Helper()
	if c.external {
		t.Fatal("pgtest: a standby needs a private primary (NewCluster)")
	}
	s, err := c.startStandby(settings)
	if err != nil {
		t.Fatalf("pgtest: standby: %v", err)
	}
	t.Cleanup(s.destroy)
	return s
}

func (c *Cluster) startStandby(settings []string) (*Cluster, error) {
	s, err := newDir(c.bin)
	if err != nil {
		return nil, err
	}
	s.settings = append([]string{"hot_standby_feedback=on"}, settings...)
	ok := false
	defer func() {
		if !ok {
			s.destroy()
		}
	}()
	if out, err := s.command(filepath.Join(c.bin, "pg_basebackup"), "-D", filepath.Join(s.dir, "data"),
		"-h", "127.0.0.1", "-p", strconv.Itoa(c.port), "-U", "trellis", "-R", "-X", "stream", "--checkpoint=fast", "--no-sync").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pg_basebackup: %w: %s", err, out)
	}
	if err := s.listen(); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// DatabaseURL returns dsn, a URL of a database on another cluster (the
// standby's primary), pointed at c: the same database, user and options.
func (c *Cluster) DatabaseURL(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		panic(fmt.Sprintf("pgtest: DatabaseURL of a DSN that is no URL: %v", err))
	}
	u.Host = fmt.Sprintf("127.0.0.1:%d", c.port)
	return u.String()
}

// AdminURL returns the DSN of the cluster's maintenance database.
func (c *Cluster) AdminURL() string { return c.url }

// NewDatabase creates an empty database on the cluster, returns its DSN and
// drops it when the test ends.
func (c *Cluster) NewDatabase(t testing.TB) string {
	t.Helper()
	sharedMu.Lock()
	dbCounter++
	name := fmt.Sprintf("trellis_test_%d_%d_%s", os.Getpid(), dbCounter, randomHex(3))
	sharedMu.Unlock()

	admin, err := sql.Open("postgres", c.url)
	if err != nil {
		t.Fatalf("pgtest: open %s: %v", redact(c.url), err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		t.Fatalf("pgtest: create database on %s: %v", redact(c.url), err)
	}
	dsn, err := withDatabase(c.url, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if !c.isUp() {
			return
		}
		admin, err := sql.Open("postgres", c.url)
		if err != nil {
			return
		}
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// WITH (FORCE) ends connections a test left open (PostgreSQL 13+).
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	return dsn
}

func (c *Cluster) isUp() bool {
	if c.external {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.running
}

// Stop stops the cluster's server (fast shutdown: connections are cut).
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	if c.external {
		t.Fatal("pgtest: cannot stop an external server")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.pgctl("stop", "-m", "fast", "-w"); err != nil {
		t.Fatalf("pgtest: stop: %v", err)
	}
	c.running = false
}

// Start starts the cluster's server again after Stop, on the same port.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.start(); err != nil {
		t.Fatalf("pgtest: start: %v", err)
	}
}

// findBin returns the directory holding initdb, pg_ctl and postgres.
func findBin() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			if resolved, err := filepath.EvalSymlinks(p); err == nil {
				p = resolved
			}
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Prefer the newest version.
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New(installHint)
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func startCluster(settings ...string) (*Cluster, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	c, err := newDir(bin)
	if err != nil {
		return nil, err
	}
	c.settings = settings
	ok := false
	defer func() {
		if !ok {
			c.destroy()
		}
	}()
	if out, err := c.command(filepath.Join(bin, "initdb"), "-D", filepath.Join(c.dir, "data"),
		"-U", "trellis", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	if err := c.listen(); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// newDir returns a Cluster with a new temporary directory, owned by the
// user the server runs as, and no data directory yet.
func newDir(bin string) (*Cluster, error) {
	dir, err := os.MkdirTemp("", "trellis-pgtest-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	c := &Cluster{dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: run it as the postgres user.
		u, err := user.Lookup("postgres")
		if err != nil {
			c.destroy()
			return nil, fmt.Errorf("running as root needs a postgres system user to run the server as: %w", err)
		}
		c.asUser = "postgres"
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			c.destroy()
			return nil, fmt.Errorf("chown %s: %w", dir, err)
		}
		// The temp dir's parents must be traversable by that user.
		_ = os.Chmod(dir, 0o700)
	}
	return c, nil
}

// listen starts the server of c's data directory on a free port, with its
// reaper, and waits until it accepts connections.
func (c *Cluster) listen() error {
	var err error
	if c.port, err = freePort(); err != nil {
		return err
	}
	if err := c.start(); err != nil {
		return err
	}
	c.startReaper()
	c.url = fmt.Sprintf("postgres://trellis@127.0.0.1:%d/postgres?sslmode=disable", c.port)
	return waitReady(c.url)
}

// start runs pg_ctl start; the caller holds c.mu (or owns c exclusively).
func (c *Cluster) start() error {
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=128MB",
		c.port, c.dir)
	for _, kv := range c.settings {
		opts += " -c " + kv
	}
	if err := c.pgctl("start", "-w", "-t", "60", "-l", filepath.Join(c.dir, "log"), "-o", opts); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		return fmt.Errorf("%w\nserver log:\n%s", err, log)
	}
	c.running = true
	return nil
}

func (c *Cluster) pgctl(args ...string) error {
	args = append([]string{"-D", filepath.Join(c.dir, "data")}, args...)
	out, err := c.command(filepath.Join(c.bin, "pg_ctl"), args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	if c.asUser != "" {
		args = append([]string{"-u", c.asUser, "--", name}, args...)
		name = "runuser"
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = c.dir
	return cmd
}

// startReaper starts a detached watchdog process that stops the server and
// removes its directory once this process is gone. Deferred clean-up cannot
// run when a test panics (the testing package re-panics and the process
// dies) or when go test kills the binary on timeout; the watchdog covers
// those cases.
func (c *Cluster) startReaper() {
	pgctl := filepath.Join(c.bin, "pg_ctl")
	stop := fmt.Sprintf("%s -D %s stop -m immediate -w", shellQuote(pgctl), shellQuote(filepath.Join(c.dir, "data")))
	if c.asUser != "" {
		stop = "runuser -u " + c.asUser + " -- " + stop
	}
	script := fmt.Sprintf("while kill -0 %d 2>/dev/null; do sleep 0.5; done; if [ -d %s ]; then %s >/dev/null 2>&1; rm -rf %s; fi",
		os.Getpid(), shellQuote(c.dir), stop, shellQuote(c.dir))
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err == nil {
		go func() { _ = cmd.Wait() }() // reaped if we outlive it
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// destroy stops the server (immediately: the data is throwaway) and removes
// its directory. It is safe to call more than once.
func (c *Cluster) destroy() {
	if c.external || c.dir == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		_ = c.pgctl("stop", "-m", "immediate", "-w")
		c.running = false
	}
	_ = os.RemoveAll(c.dir)
	c.dir = ""
}

func waitReady(dsn string) error {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server did not accept connections: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// withDatabase returns dsn (a URL or key=value DSN) naming database name.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse %s: %w", EnvURL, err)
		}
		u.Path = "/" + name
		return u.String(), nil
	}
	return dsn + " dbname=" + name, nil
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	return u.Redacted()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
