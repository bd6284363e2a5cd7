package config

import (
	"bytes"
	"strings"
	"testing"
)

func TestTracingEnabled(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		enabled  bool
		endpoint string
	}{
		{"unset", nil, false, ""},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true, "http://collector:4318"},
		{"traces endpoint wins", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4318/v1/traces"}, true, "http://b:4318/v1/traces"},
		{"sdk disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_SDK_DISABLED": "TRUE"}, false, "http://a:4318"},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_TRACES_EXPORTER": "none"}, false, "http://a:4318"},
		{"only other settings", map[string]string{"OTEL_SERVICE_NAME": "gw", "OTEL_BSP_SCHEDULE_DELAY": "100"}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, nil, tt.env)
			if c.Tracing.Enabled != tt.enabled || c.Tracing.Endpoint != tt.endpoint {
				t.Fatalf("Tracing = %+v, want enabled %v endpoint %q", c.Tracing, tt.enabled, tt.endpoint)
			}
		})
	}
}

func TestTracingRejectsUnsupported(t *testing.T) {
	tests := []struct {
		name, variable string
		env            map[string]string
	}{
		{"grpc", "OTEL_EXPORTER_OTLP_PROTOCOL", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}},
		{"traces grpc", "OTEL_EXPORTER_OTLP_PROTOCOL", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}},
		{"console exporter", "OTEL_TRACES_EXPORTER", map[string]string{"OTEL_TRACES_EXPORTER": "console"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://collector:4318"
			_, err := Load(nil, env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.variable) {
				t.Fatalf("err = %v, want one naming %s", err, tt.variable)
			}
		})
	}
	// Off, nothing is exported: unsupported settings do not matter.
	if _, err := Load(nil, env(map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})); err != nil {
		t.Fatalf("tracing off: %v", err)
	}
	for _, ok := range []string{"http/protobuf", "http/json"} {
		if _, err := Load(nil, env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": ok})); err != nil {
			t.Fatalf("%s: %v", ok, err)
		}
	}
}

func TestTracingPrinted(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		want []string
	}{
		{nil, []string{"TRACING=off\n", "OTEL_TRACES_ENDPOINT=\n"}},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://u:s3cret@collector:4318", "OTEL_SERVICE_NAME": "gw-eu"},
			[]string{"TRACING=on\n", "OTEL_TRACES_ENDPOINT=https://u:<redacted>@collector:4318\n", "OTEL_SERVICE_NAME=gw-eu\n"}},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, []string{"TRACING=on\n", "OTEL_TRACES_ENDPOINT=collector:4318\n"}},
	} {
		var buf bytes.Buffer
		if err := mustLoad(t, nil, tt.env).Print(&buf); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if strings.Contains(out, "s3cret") {
			t.Errorf("secret printed:\n%s", out)
		}
		for _, line := range tt.want {
			if !strings.Contains(out, line) {
				t.Errorf("missing %q in\n%s", line, out)
			}
		}
	}
}
