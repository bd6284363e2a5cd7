// Package tracing sets up OpenTelemetry tracing from the standard OTEL_*
// environment variables and holds the helpers the traced packages share:
// span links from a record's W3C traceparent header and a slog handler that
// adds the trace and span ids of a log call's context.
//
// Tracing is off unless an OTLP endpoint is configured (see config.Tracing);
// then Setup returns nil and every caller skips its span work, so the hot
// paths cost nothing. When on, spans are exported over OTLP/HTTP (protobuf,
// or JSON with OTEL_EXPORTER_OTLP_PROTOCOL=http/json) by a batch span
// processor; the exporter, sampler and batching read their OTEL_* settings
// themselves. Everything here is safe for concurrent use.
package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// DefaultServiceName is service.name unless OTEL_SERVICE_NAME (or
// OTEL_RESOURCE_ATTRIBUTES) names another.
const DefaultServiceName = "dashstream-gateway"

// Config configures Setup.
type Config struct {
	// Enabled turns tracing on. False: Setup returns a nil Provider.
	Enabled bool
	// ServiceVersion is the resource's service.version. Empty: not set.
	ServiceVersion string
}

// Provider owns the SDK tracer provider and its exporter. A nil *Provider
// is valid and means tracing is off.
type Provider struct {
	tp     *sdktrace.TracerProvider
	closed atomic.Bool // set by Shutdown: the error handler stops using log
}

// Setup builds the tracer provider when cfg.Enabled and installs it, with
// the W3C trace context propagator, as the process's global one (the hub
// traces resumes through otel.Tracer). Export errors are logged to log. It
// does not connect: the exporter dials when the first batch is due.
func Setup(ctx context.Context, cfg Config, log *slog.Logger) (*Provider, error) {
	if !cfg.Enabled {
		return nil, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res, err := resource(ctx, cfg)
	if err != nil {
		return nil, err
	}
	p := &Provider{tp: sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))}
	otel.SetTracerProvider(p.tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		if !p.closed.Load() {
			log.Warn("tracing: export failed", "err", err)
		}
	}))
	return p, nil
}

// resource describes this process: service.name and service.version by
// default, overridden by OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
func resource(ctx context.Context, cfg Config) (*sdkresource.Resource, error) {
	attrs := []attribute.KeyValue{attribute.String("service.name", DefaultServiceName)}
	if cfg.ServiceVersion != "" {
		attrs = append(attrs, attribute.String("service.version", cfg.ServiceVersion))
	}
	res, err := sdkresource.New(ctx, sdkresource.WithAttributes(attrs...),
		sdkresource.WithTelemetrySDK(), sdkresource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	return res, nil
}

// TracerProvider is the provider to trace with; nil when tracing is off.
func (p *Provider) TracerProvider() trace.TracerProvider {
	if p == nil {
		return nil
	}
	return p.tp
}

// Shutdown exports the spans still queued and stops the exporter, bounded
// by ctx. Spans started afterwards are dropped.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	err := p.tp.Shutdown(ctx)
	p.closed.Store(true)
	if err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}
