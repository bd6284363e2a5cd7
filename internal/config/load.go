package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
)

// ErrHelp is returned by Load when -h or --help was given; print Usage then.
var ErrHelp = flag.ErrHelp

// flagValue records a flag's raw text and whether it was given.
type flagValue struct {
	raw    string
	given  bool
	isBool bool
}

func (f *flagValue) Set(s string) error { f.raw, f.given = s, true; return nil }
func (f *flagValue) String() string     { return f.raw }
func (f *flagValue) IsBoolFlag() bool   { return f.isBool }

// Load builds the configuration from the command-line args (flags win) and
// getenv (usually os.Getenv), then validates it. Every invalid value is
// reported, each error naming its variable. Non-flag arguments end up in
// Config.Args. With -h/--help it returns ErrHelp.
func Load(args []string, getenv func(string) string) (*Config, error) {
	c := &Config{}
	vars := c.vars()
	fs := flag.NewFlagSet("dashstream", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	given := make([]*flagValue, len(vars))
	for i, v := range vars {
		given[i] = &flagValue{isBool: v.isBool}
		fs.Var(given[i], flagName(v.name), v.help)
		if v.alias != "" {
			fs.Var(given[i], v.alias, v.help)
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, ErrHelp
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := c.apply(vars, given, getenv); err != nil {
		return nil, err
	}
	c.Args = fs.Args()
	c.Tracing = loadTracing(getenv)
	c.fillDerived(os.Hostname)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// apply sets every variable from its flag, else its environment value, else
// its default. An empty value means "use the default".
func (c *Config) apply(vars []variable, given []*flagValue, getenv func(string) string) error {
	var errs []error
	for i, v := range vars {
		raw, src := getenv(v.name), "environment"
		if given[i].given {
			raw, src = given[i].raw, "flag --"+flagName(v.name)
		}
		if raw == "" {
			raw, src = v.def, "default"
		}
		if raw == "" {
			continue
		}
		if err := v.v.set(raw); err != nil {
			errs = append(errs, fmt.Errorf("config: %s (%s) = %q: %w", v.name, src, shown(v, raw), err))
		}
	}
	return errors.Join(errs...)
}

// shown is raw as it may appear in an error message.
func shown(v variable, raw string) string {
	if v.secret {
		return redacted
	}
	return raw
}

// fillDerived sets the defaults that depend on other values.
func (c *Config) fillDerived(hostname func() (string, error)) {
	if c.DLQ.Topic == "" && c.Kafka.Topic != "" {
		c.DLQ.Topic = c.Kafka.Topic + "-dlq"
	}
	if c.Kafka.InstanceID == "" {
		host, err := hostname()
		if err != nil || host == "" {
			host = "dashstream"
		}
		c.Kafka.InstanceID = host + "-" + strconv.Itoa(c.Server.Port)
	}
}

// Usage writes every flag, its variable, default and meaning to w, one
// entry per variable in the command help's style:
//
//	--kafka-topic (KAFKA_TOPIC, default "dashstream-quality")
//	    DashStream topic
func Usage(w io.Writer) {
	for _, v := range (&Config{}).vars() {
		name := "--" + flagName(v.name)
		if v.alias != "" {
			name += ", --" + v.alias
		}
		meta := v.name
		if v.def != "" {
			meta += fmt.Sprintf(", default %q", v.def)
		}
		fmt.Fprintf(w, "  %s (%s)\n      %s\n", name, meta, v.help)
	}
}
