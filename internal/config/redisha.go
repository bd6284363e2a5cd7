package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Redis Cluster and Sentinel: alternatives to REDIS_URL. Credentials and TLS
// are given the way REDIS_URL gives them: an address is host:port or a
// redis:// / rediss:// URL, and user, password and scheme of the entries that
// are URLs apply to every node (they must agree). For Sentinel the user and
// password are the master's and replicas' (the sentinels' own password is
// REDIS_SENTINEL_PASSWORD) and rediss:// turns TLS on for the sentinels and
// the master alike.

func (c *Config) redisHAVars() []variable {
	rd := &c.Redis
	return []variable{
		{name: "REDIS_CLUSTER_ADDRS", help: "comma-separated Redis Cluster seed nodes, host:port or redis[s]://[user:password@]host:port; instead of REDIS_URL", v: listValue{&rd.ClusterAddrs}},
		{name: "REDIS_SENTINEL_ADDRS", help: "comma-separated Redis Sentinel addresses, host:port or redis[s]://[user:password@]host:port[/db] (user and password of the master; rediss: TLS to sentinels and master); instead of REDIS_URL", v: listValue{&rd.SentinelAddrs}},
		{name: "REDIS_SENTINEL_MASTER", help: "master name monitored by the sentinels (required with REDIS_SENTINEL_ADDRS)", v: stringValue{&rd.SentinelMaster}},
		{name: "REDIS_SENTINEL_PASSWORD", help: "password of the sentinels themselves (their requirepass); empty: none", v: stringValue{&rd.SentinelPassword}, secret: true},
	}
}

func (c *Config) validateRedisHA(check checkFunc) {
	r := c.Redis
	n := 0
	for _, set := range []bool{r.URL != "", len(r.ClusterAddrs) > 0, len(r.SentinelAddrs) > 0} {
		if set {
			n++
		}
	}
	if n > 1 {
		check("REDIS_URL", errors.New("set only one of REDIS_URL, REDIS_CLUSTER_ADDRS and REDIS_SENTINEL_ADDRS"))
	}
	if len(r.ClusterAddrs) > 0 {
		check("REDIS_CLUSTER_ADDRS", redisAddrs(r.ClusterAddrs, false))
	}
	if len(r.SentinelAddrs) > 0 {
		check("REDIS_SENTINEL_ADDRS", redisAddrs(r.SentinelAddrs, true))
		check("REDIS_SENTINEL_MASTER", nonEmpty(r.SentinelMaster))
	} else if r.SentinelMaster != "" || r.SentinelPassword != "" {
		check("REDIS_SENTINEL_MASTER", errors.New("needs REDIS_SENTINEL_ADDRS"))
	}
}

// RedisAddr is one entry of REDIS_CLUSTER_ADDRS or REDIS_SENTINEL_ADDRS.
type RedisAddr struct {
	Addr     string // host:port
	Username string // empty: none given
	Password string // empty: none given
	TLS      bool   // rediss://
	DB       int    // /db (Sentinel only), 0 when absent
	HasURL   bool   // given as a URL (carries scheme and credentials)
}

// ParseRedisAddr parses host:port or redis[s]://[user:password@]host:port[/db].
func ParseRedisAddr(s string) (RedisAddr, error) {
	if !strings.Contains(s, "://") {
		if err := hostPort(s); err != nil {
			return RedisAddr{}, err
		}
		return RedisAddr{Addr: s}, nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		return RedisAddr{}, fmt.Errorf("%q: not host:port or a redis:// or rediss:// URL", redactURL(s))
	}
	if err := hostPort(u.Host); err != nil {
		return RedisAddr{}, err
	}
	a := RedisAddr{Addr: u.Host, Username: u.User.Username(), TLS: u.Scheme == "rediss", HasURL: true}
	a.Password, _ = u.User.Password()
	if db := strings.Trim(u.Path, "/"); db != "" {
		if _, err := fmt.Sscanf(db, "%d", &a.DB); err != nil || a.DB < 0 || fmt.Sprint(a.DB) != db {
			return RedisAddr{}, fmt.Errorf("%q: database %q is not a number", redactURL(s), db)
		}
	}
	return a, nil
}

// redisAddrs checks every entry and that the URLs among them agree on
// credentials, TLS and database. Redis Cluster has database 0 only.
func redisAddrs(entries []string, dbAllowed bool) error {
	var first *RedisAddr
	for _, s := range entries {
		a, err := ParseRedisAddr(s)
		if err != nil {
			return err
		}
		if a.DB != 0 && !dbAllowed {
			return errors.New("Redis Cluster has no database but 0")
		}
		if !a.HasURL {
			continue
		}
		if first == nil {
			first = &a
		} else if a.Username != first.Username || a.Password != first.Password || a.TLS != first.TLS || a.DB != first.DB {
			return errors.New("the URLs differ in credentials, scheme or database")
		}
	}
	return nil
}
