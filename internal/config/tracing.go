package config

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Tracing is OpenTelemetry tracing. The OTel SDK reads the standard OTEL_*
// variables itself (exporter endpoint, headers, TLS, sampler, batching,
// resource); the gateway only needs to know whether tracing is on, and
// refuses settings this build cannot support.
type Tracing struct {
	// Enabled is true when OTEL_EXPORTER_OTLP_ENDPOINT or
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, unless OTEL_SDK_DISABLED is
	// "true" or OTEL_TRACES_EXPORTER is "none". False: no spans are made.
	Enabled bool
	// Endpoint is the traces endpoint in effect (the TRACES_ one wins).
	// Empty: none configured.
	Endpoint string
	// Protocol is the OTLP protocol asked for (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
	// else OTEL_EXPORTER_OTLP_PROTOCOL). Empty: http/protobuf.
	Protocol string
	// Exporter is OTEL_TRACES_EXPORTER. Empty: otlp.
	Exporter string
	// ServiceName is service.name (OTEL_SERVICE_NAME). Empty: the default,
	// "dashstream-gateway" (OTEL_RESOURCE_ATTRIBUTES may still name one).
	ServiceName string
}

// loadTracing reads the OTEL_* variables that decide whether tracing is on.
func loadTracing(getenv func(string) string) Tracing {
	env := func(name string) string { return strings.TrimSpace(getenv(name)) }
	t := Tracing{
		Endpoint:    cmp.Or(env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), env("OTEL_EXPORTER_OTLP_ENDPOINT")),
		Protocol:    cmp.Or(env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), env("OTEL_EXPORTER_OTLP_PROTOCOL")),
		Exporter:    strings.ToLower(env("OTEL_TRACES_EXPORTER")),
		ServiceName: env("OTEL_SERVICE_NAME"),
	}
	disabled := strings.EqualFold(env("OTEL_SDK_DISABLED"), "true") || t.Exporter == "none"
	t.Enabled = t.Endpoint != "" && !disabled
	return t
}

// validateTracing refuses what the OTLP/HTTP exporter of this build cannot do.
func (c *Config) validateTracing(check checkFunc) {
	t := c.Tracing
	if !t.Enabled {
		return
	}
	switch t.Protocol {
	case "", "http/protobuf", "http/json":
	default:
		check("OTEL_EXPORTER_OTLP_PROTOCOL", fmt.Errorf("%q is not supported: this build exports OTLP over HTTP (http/protobuf or http/json)", t.Protocol))
	}
	if t.Exporter != "" && t.Exporter != "otlp" {
		check("OTEL_TRACES_EXPORTER", errors.New("must be otlp or none"))
	}
}

// printTracing writes the derived tracing lines of Print.
func (c *Config) printTracing(w io.Writer) error {
	t := c.Tracing
	state := "off"
	if t.Enabled {
		state = "on"
	}
	_, err := fmt.Fprintf(w, "TRACING=%s\nOTEL_TRACES_ENDPOINT=%s\nOTEL_SERVICE_NAME=%s\n",
		state, redactEndpoint(t.Endpoint), t.ServiceName)
	return err
}

// redactEndpoint hides a password in an endpoint URL; an endpoint without a
// scheme (host:port) has none.
func redactEndpoint(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return redactURL(s)
}
