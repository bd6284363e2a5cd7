package config

import (
	"strings"
	"testing"
)

func TestRedisHASettings(t *testing.T) {
	c := mustLoad(t, nil, map[string]string{
		"REDIS_SENTINEL_ADDRS":    "rediss://app:s3cret@10.0.0.1:26379/2, 10.0.0.2:26379",
		"REDIS_SENTINEL_MASTER":   "dash",
		"REDIS_SENTINEL_PASSWORD": "sentinel-pw",
	})
	r := c.Redis
	if !r.Enabled() || len(r.SentinelAddrs) != 2 || r.SentinelMaster != "dash" || r.SentinelPassword != "sentinel-pw" {
		t.Fatalf("sentinel settings: %+v", r)
	}
	a, err := ParseRedisAddr(r.SentinelAddrs[0])
	if err != nil || a != (RedisAddr{Addr: "10.0.0.1:26379", Username: "app", Password: "s3cret", TLS: true, DB: 2, HasURL: true}) {
		t.Fatalf("ParseRedisAddr = %+v, %v", a, err)
	}
	var out strings.Builder
	if err := c.Print(&out); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); strings.Contains(s, "s3cret") || strings.Contains(s, "sentinel-pw") ||
		!strings.Contains(s, "REDIS_SENTINEL_ADDRS=rediss://app:<redacted>@10.0.0.1:26379/2,10.0.0.2:26379\n") {
		t.Fatalf("printed:\n%s", s)
	}
	cl := mustLoad(t, nil, map[string]string{"REDIS_CLUSTER_ADDRS": "127.0.0.1:7000,127.0.0.1:7001"}).Redis
	if !cl.Enabled() || len(cl.ClusterAddrs) != 2 {
		t.Fatalf("cluster settings: %+v", cl)
	}
}

func TestRedisHAInvalid(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"url and cluster":      {map[string]string{"REDIS_URL": "redis://h:1", "REDIS_CLUSTER_ADDRS": "h:2"}, "only one of"},
		"cluster and sentinel": {map[string]string{"REDIS_CLUSTER_ADDRS": "h:2", "REDIS_SENTINEL_ADDRS": "h:3", "REDIS_SENTINEL_MASTER": "m"}, "only one of"},
		"no master":            {map[string]string{"REDIS_SENTINEL_ADDRS": "h:3"}, "REDIS_SENTINEL_MASTER"},
		"master alone":         {map[string]string{"REDIS_SENTINEL_MASTER": "m"}, "needs REDIS_SENTINEL_ADDRS"},
		"not host:port":        {map[string]string{"REDIS_CLUSTER_ADDRS": "h"}, "not host:port"},
		"wrong scheme":         {map[string]string{"REDIS_CLUSTER_ADDRS": "http://h:1"}, "not host:port or a redis"},
		"cluster database":     {map[string]string{"REDIS_CLUSTER_ADDRS": "redis://h:1/3"}, "no database"},
		"credentials differ":   {map[string]string{"REDIS_CLUSTER_ADDRS": "redis://a:x@h:1,redis://a:y@h:2"}, "differ"},
		"tls differs":          {map[string]string{"REDIS_CLUSTER_ADDRS": "redis://h:1,rediss://h:2"}, "differ"},
		"bad database":         {map[string]string{"REDIS_SENTINEL_ADDRS": "redis://h:1/x", "REDIS_SENTINEL_MASTER": "m"}, "not a number"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(nil, env(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "x@") {
				t.Fatalf("password in error: %v", err)
			}
		})
	}
}
