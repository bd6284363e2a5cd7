package app

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/dashflow/dashstream-gateway/internal/config"
)

// TestNewRedisClientKinds: each of REDIS_URL, REDIS_CLUSTER_ADDRS and
// REDIS_SENTINEL_ADDRS builds its kind of client, with the credentials, TLS
// and database the addresses carry. No I/O: go-redis dials lazily.
func TestNewRedisClientKinds(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg        config.Redis
		cluster    bool
		user, pass string
		db         int
		tls        bool
	}{
		"url":         {cfg: config.Redis{URL: "rediss://u:p@127.0.0.1:1/3"}, user: "u", pass: "p", db: 3, tls: true},
		"cluster":     {cfg: config.Redis{ClusterAddrs: []string{"127.0.0.1:1", "redis://u:p@127.0.0.1:2"}}, cluster: true, user: "u", pass: "p"},
		"cluster tls": {cfg: config.Redis{ClusterAddrs: []string{"rediss://127.0.0.1:1"}}, cluster: true, tls: true},
		"sentinel":    {cfg: config.Redis{SentinelAddrs: []string{"redis://:p@127.0.0.1:1/2"}, SentinelMaster: "m", SentinelPassword: "s"}, pass: "p", db: 2},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := newRedisClient(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var user, pass string
			var db int
			var tlsOn bool
			switch cl := c.(type) {
			case *redis.ClusterClient:
				if !tc.cluster {
					t.Fatalf("got a cluster client")
				}
				o := cl.Options()
				user, pass, tlsOn = o.Username, o.Password, o.TLSConfig != nil
			case *redis.Client:
				if tc.cluster {
					t.Fatalf("got a single-node or failover client")
				}
				o := cl.Options()
				user, pass, db, tlsOn = o.Username, o.Password, o.DB, o.TLSConfig != nil
				if tc.cfg.SentinelMaster != "" && o.Addr != "FailoverClient" {
					t.Fatalf("sentinel settings built a plain client for %s", o.Addr)
				}
			default:
				t.Fatalf("client %T", c)
			}
			if user != tc.user || pass != tc.pass || db != tc.db || tlsOn != tc.tls {
				t.Fatalf("user %q pass %q db %d tls %v, want %q %q %d %v", user, pass, db, tlsOn, tc.user, tc.pass, tc.db, tc.tls)
			}
		})
	}
}
