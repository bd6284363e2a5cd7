package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ServerConfig tunes a private server of StartKafkaConfig or
// StartRedisConfig. The zero value is ready to use.
type ServerConfig struct {
	// StartTimeout bounds each start until the server answers.
	// Zero means 180 s for Kafka (a JVM starts in ~4 s on an idle 2-core box,
	// but took 40-50 s while other builds and tests ran), 30 s for Redis.
	StartTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGTERM (Kafka) or SHUTDOWN
	// (Redis) before SIGKILL. Zero means 20 s.
	StopTimeout time.Duration
	// RedisPersist turns on Redis's append-only file with fsync always, so
	// data survives Kill and Start. False: no persistence, a restarted Redis
	// is empty. (Kafka always keeps its data across restarts.)
	RedisPersist bool
	// KafkaProperties are extra broker properties, "key=value" each.
	KafkaProperties []string
	// KafkaProxied, when set, adds a second PLAINTEXT listener to the broker
	// that advertises another address, so that a fault-injecting proxy in
	// front of it stays in the path after the client reads the metadata.
	// Nil: only the PLAINTEXT listener.
	KafkaProxied *ProxiedListener
}

// ProxiedListener is a broker listener named PROXIED on 127.0.0.1:Port
// whose advertised address is Advertised ("127.0.0.1:<proxy port>"). Clients
// that connect through the proxy learn the proxy's address from the
// metadata; the PLAINTEXT listener keeps advertising itself.
type ProxiedListener struct {
	Port       int
	Advertised string
}

// properties override the listener settings of scripts/kafka.sh (its
// KAFKA_OVERRIDES come last, and the last value wins).
func (l *ProxiedListener) properties(port, controllerPort int) []string {
	if l == nil {
		return nil
	}
	return []string{
		fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d,PROXIED://127.0.0.1:%d", port, controllerPort, l.Port),
		fmt.Sprintf("advertised.listeners=PLAINTEXT://127.0.0.1:%d,PROXIED://%s", port, l.Advertised),
		"listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PROXIED:PLAINTEXT",
	}
}

// service drives one scripts/*.sh instance with a private state dir.
type service struct {
	name         string // "kafka", "redis" or "redis-ha": script scripts/<name>.sh
	script       string
	mode         []string // arguments before the verb ("cluster" for redis-ha.sh)
	env          []string
	startTimeout time.Duration
	stopTimeout  time.Duration
}

// run executes the script with verb and returns its stdout. The script's
// stderr (its progress and, on failure, the server's log tail) ends up in the
// error.
func (s *service) run(verb string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", slices.Concat([]string{s.script}, s.mode, []string{verb})...)
	cmd.Env = append(os.Environ(), s.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second // the script's daemons never hold our pipes, but be sure
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s", filepath.Base(s.script), verb, err, stderr.String())
	}
	return stdout.String(), nil
}

func (s *service) start(t testing.TB) string {
	t.Helper()
	out, err := s.run("start", s.startTimeout+time.Minute) // + storage format, JVM warm-up
	checkErr(t, err, "start private %s", s.name)
	return out
}

func (s *service) stop(t testing.TB) {
	t.Helper()
	_, err := s.run("stop", s.stopTimeout+time.Minute)
	checkErr(t, err, "stop private %s", s.name)
}

func (s *service) kill(t testing.TB) {
	t.Helper()
	_, err := s.run("kill", time.Minute)
	checkErr(t, err, "kill private %s", s.name)
}

// newService finds scripts/<name>.sh and checks the service is installed;
// when it is not, the test is skipped (or fails under integration).
func newService(t testing.TB, name string, cfg ServerConfig, defaultStart time.Duration) *service {
	t.Helper()
	if testing.Short() && !Integration() {
		t.Skipf("-short: skipping a test that starts its own %s", name)
	}
	script, err := findScript(name + ".sh")
	if err != nil {
		unavailable(t, err.Error())
	}
	s := &service{
		name:         name,
		script:       script,
		startTimeout: orDefault(cfg.StartTimeout, defaultStart),
		stopTimeout:  orDefault(cfg.StopTimeout, 20*time.Second),
	}
	if _, err := s.run("installed", time.Minute); err != nil {
		unavailable(t, fmt.Sprintf("%s not installed; run scripts/%s.sh install", name, name))
	}
	return s
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// findScript walks up from the working directory (a package dir under go
// test) to the repository's scripts/ folder.
func findScript(file string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "scripts", file)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("scripts/" + file + " not found above the working directory")
		}
		dir = parent
	}
}

// secs renders a duration for the scripts' whole-second settings.
func secs(d time.Duration) string {
	return strconv.Itoa(int((d + time.Second - 1) / time.Second))
}

// startWithFreePorts picks free ports and starts the service, retrying with
// new ports when another process grabbed one in between.
func startWithFreePorts(t testing.TB, s *service, nports int, env func(ports []int) []string) []int {
	t.Helper()
	var lastErr error
	for range 5 {
		ports := freePorts(t, nports)
		s.env = env(ports)
		_, err := s.run("start", s.startTimeout+time.Minute)
		if err == nil {
			return ports
		}
		lastErr = err
		if !strings.Contains(err.Error(), "in use") {
			break
		}
		t.Logf("testenv: %s: port taken, retrying with new ports", s.name)
	}
	t.Fatalf("testenv: start private %s: %v", s.name, lastErr)
	return nil
}

// privateKafkaProperties shorten a restart after Kill from ~13 s to ~7 s:
// the restarted controller remembers the killed broker's session and refuses
// the new registration (DUPLICATE_BROKER_REGISTRATION) until it expires
// (default 9 s).
var privateKafkaProperties = []string{
	"broker.session.timeout.ms=4000",
	"broker.heartbeat.interval.ms=1000",
}

// KafkaServer is a private single-node Kafka broker owned by one test. The
// embedded env works across Stop/Kill and Start: same port, same data dir, so
// topics and offsets survive restarts.
type KafkaServer struct {
	*KafkaEnv
	Port           int    // PLAINTEXT port on 127.0.0.1
	ControllerPort int    // KRaft controller port
	DataDir        string // Kafka's log.dirs, kept across restarts
	svc            *service
}

// StartKafka starts a private broker with the default ServerConfig.
func StartKafka(t testing.TB) *KafkaServer {
	t.Helper()
	return StartKafkaConfig(t, ServerConfig{})
}

// StartKafkaConfig starts a private broker on free ports and stops it when t
// ends. It needs the jars of `scripts/kafka.sh install`; without them the
// test is skipped (or fails under DASHSTREAM_INTEGRATION=1). With -short
// (make unit) and no DASHSTREAM_INTEGRATION the test is skipped too.
func StartKafkaConfig(t testing.TB, cfg ServerConfig) *KafkaServer {
	t.Helper()
	s := newService(t, "kafka", cfg, 180*time.Second)
	dir := t.TempDir()
	srv := &KafkaServer{DataDir: filepath.Join(dir, "data"), svc: s}
	t.Cleanup(func() { s.stop(t) })
	ports := startWithFreePorts(t, s, 2, func(ports []int) []string {
		return []string{
			"KAFKA_PORT=" + strconv.Itoa(ports[0]),
			"KAFKA_CONTROLLER_PORT=" + strconv.Itoa(ports[1]),
			"KAFKA_STATE_DIR=" + filepath.Join(dir, "state"),
			"KAFKA_DATA_DIR=" + srv.DataDir,
			"KAFKA_START_TIMEOUT=" + secs(s.startTimeout),
			"KAFKA_STOP_TIMEOUT=" + secs(s.stopTimeout),
			"KAFKA_OVERRIDES=" + strings.Join(slices.Concat(privateKafkaProperties,
				cfg.KafkaProxied.properties(ports[0], ports[1]), cfg.KafkaProperties), " "),
			"KAFKA_WATCH_PID=" + strconv.Itoa(os.Getpid()),
			// C1 only: ~30% less CPU to start; a test's own broker carries
			// little load and often starts while other tests compete for CPU.
			"KAFKA_JVM_OPTS=-XX:TieredStopAtLevel=1",
		}
	})
	srv.Port, srv.ControllerPort = ports[0], ports[1]
	srv.KafkaEnv = newKafkaEnv(t, []string{"127.0.0.1:" + strconv.Itoa(srv.Port)}, true)
	return srv
}

// Start (re)starts the broker on the same port and data dir and waits until
// it answers; a no-op when it is running.
func (s *KafkaServer) Start(t testing.TB) { t.Helper(); s.svc.start(t) }

// Stop shuts the broker down cleanly (SIGTERM, SIGKILL after StopTimeout).
func (s *KafkaServer) Stop(t testing.TB) { t.Helper(); s.svc.stop(t) }

// Kill ends the broker with SIGKILL, like a crash; its data dir stays.
func (s *KafkaServer) Kill(t testing.TB) { t.Helper(); s.svc.kill(t) }

// RedisServer is a private Redis server owned by one test. The embedded env's
// client reconnects across Stop/Kill and Start (same port).
type RedisServer struct {
	*RedisEnv
	Port int // on 127.0.0.1
	svc  *service
}

// StartRedis starts a private Redis without persistence.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	return StartRedisConfig(t, ServerConfig{})
}

// StartRedisConfig starts a private Redis on a free port and stops it when t
// ends. It needs redis-server (`scripts/redis.sh install`); without it the
// test is skipped (or fails under DASHSTREAM_INTEGRATION=1), as with -short
// and no DASHSTREAM_INTEGRATION.
func StartRedisConfig(t testing.TB, cfg ServerConfig) *RedisServer {
	t.Helper()
	s := newService(t, "redis", cfg, 30*time.Second)
	dir := t.TempDir()
	persist := ""
	if cfg.RedisPersist {
		persist = "1"
	}
	t.Cleanup(func() { s.stop(t) })
	ports := startWithFreePorts(t, s, 1, func(ports []int) []string {
		return []string{
			"REDIS_PORT=" + strconv.Itoa(ports[0]),
			"REDIS_STATE_DIR=" + dir,
			"REDIS_PERSIST=" + persist,
			"REDIS_START_TIMEOUT=" + secs(s.startTimeout),
			"REDIS_STOP_TIMEOUT=" + secs(s.stopTimeout),
			"REDIS_WATCH_PID=" + strconv.Itoa(os.Getpid()),
		}
	})
	srv := &RedisServer{Port: ports[0], svc: s}
	srv.RedisEnv = newRedisEnv(t, fmt.Sprintf("redis://127.0.0.1:%d/0", srv.Port))
	return srv
}

// Start (re)starts Redis on the same port and dir and waits for PONG; a no-op
// when it is running.
func (s *RedisServer) Start(t testing.TB) { t.Helper(); s.svc.start(t) }

// Stop shuts Redis down (SHUTDOWN NOSAVE, SIGKILL after StopTimeout).
func (s *RedisServer) Stop(t testing.TB) { t.Helper(); s.svc.stop(t) }

// Kill ends Redis with SIGKILL, like a crash.
func (s *RedisServer) Kill(t testing.TB) { t.Helper(); s.svc.kill(t) }
