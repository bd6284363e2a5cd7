package main

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestBenchEmbedded runs a short benchmark against a gateway started in
// process (embedded broker, free ports) and checks exact delivery.
func TestBenchEmbedded(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gateway")
	}
	var out, errOut bytes.Buffer
	code := runBench(context.Background(), []string{"--in-process", "--clients", "20", "--rate", "200", "--size", "300",
		"--duration", "2s", "--warmup", "300ms", "--grace", "5s", "--idle-clients", "10", "--json", "--quiet"}, testEnv(nil, &out, &errOut, nil))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var res map[string]any
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("bad JSON %q: %v", out.String(), err)
	}
	t.Logf("%s", out.String())
	for _, k := range []string{"lost", "duplicated", "out_of_order", "client_errors", "produce_errors"} {
		if res[k] != 0.0 {
			t.Errorf("%s = %v", k, res[k])
		}
	}
	if res["mode"] != "embedded" || res["clients"] != 20.0 || res["delivered_total"].(float64) < 20*200*2*0.9 {
		t.Errorf("result %v", res)
	}
	lat := res["latency_ms"].(map[string]any)
	if p50, limit := lat["p50"].(float64), lat["max"].(float64); p50 <= 0 || limit > 2000 || p50 > limit {
		t.Errorf("latency %v", lat)
	}
	for _, k := range []string{"process_rss_bytes", "rss_per_idle_conn_bytes", "go_version", "cpus"} {
		if _, ok := res[k]; !ok {
			t.Errorf("no %s in %v", k, res)
		}
	}
}

// TestBenchFloor runs the floor of a small filtered load with its reading
// side in a child process (this test binary, as the program).
func TestBenchFloor(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("per-thread CPU accounting is Linux's")
	}
	var out, errOut bytes.Buffer
	code := runBench(t.Context(), []string{"--floor", "--compare-v1", "--clients", "30", "--threads", "10", "--filter-per-client",
		"--rate", "300", "--size", "200", "--duration", "1s", "--warmup", "200ms", "--json"}, testEnv(nil, &out, &errOut, nil))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var res struct {
		V1, V2 struct {
			V2                   bool    `json:"v2"`
			DeliveriesPerSec     float64 `json:"deliveries_per_sec"`
			CPUMicrosPerDelivery float64 `json:"cpu_us_per_delivery"`
		}
		Ratio float64 `json:"cpu_per_delivery_ratio_v2_v1"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("bad JSON %q: %v", out.String(), err)
	}
	t.Logf("%s", out.String())
	// 300 records/s over 10 threads, 3 clients each: 900 deliveries/s.
	for _, r := range []struct {
		V2                   bool    `json:"v2"`
		DeliveriesPerSec     float64 `json:"deliveries_per_sec"`
		CPUMicrosPerDelivery float64 `json:"cpu_us_per_delivery"`
	}{res.V1, res.V2} {
		if r.DeliveriesPerSec < 300 || r.DeliveriesPerSec > 2700 || r.CPUMicrosPerDelivery <= 0 {
			t.Errorf("floor %+v", r)
		}
	}
	if res.V1.V2 || !res.V2.V2 || res.Ratio <= 0 {
		t.Errorf("comparison %s", out.String())
	}
}

func TestBenchUsage(t *testing.T) {
	cases := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"extra"}, 2, "unexpected argument"},
		{[]string{"--clients", "x"}, 2, "invalid value"},
		{[]string{"--url", "ws://10.1.2.3:3002/ws", "--quiet"}, 1, "only loopback"},
		{[]string{"--url", "ws://127.0.0.1:1/ws", "--clients", "0", "--quiet"}, 1, "clients 0"},
		{[]string{"--url", "ws://127.0.0.1:1/ws", "--filter-per-client", "--quiet"}, 1, "a filter per client needs threads"},
		{[]string{"--url", "ws://127.0.0.1:1/ws", "--threads", "-1", "--quiet"}, 1, "threads -1"},
		{[]string{"--format", "xml"}, 2, "want binary or json"},
		{[]string{"--format", "json"}, 2, "--format json needs --v2"},
		{[]string{"--filter-index", "maybe"}, 2, "want on or off"},
		{[]string{"--url", "ws://127.0.0.1:1/ws", "--filter-index", "off"}, 2, "not with --url"},
		{[]string{"--compare-v1", "--sse"}, 2, "not with --sse"},
		{[]string{"--compare-v1", "--format", "json"}, 2, "not with --sse or --format json"},
		{[]string{"--join-clients", "5"}, 2, "--join-clients needs --threads"},
		{[]string{"--join-clients", "5", "--threads", "2", "--compare-v1"}, 2, "not run with --compare-v1"},
		{[]string{"--floor", "--sse"}, 2, "not with --url, --sse"},
		{[]string{"--floor", "--url", "ws://127.0.0.1:1/ws"}, 2, "not with --url"},
		{[]string{"--floor", "--filter-per-client"}, 2, "--filter-per-client needs --threads"},
		{[]string{"--filter-types", " , "}, 2, "no message type"},
		{[]string{"--filter-types", "checkpoint,node_start"}, 2, `unknown message type "node_start"`},
		{[]string{"--filter-types", "checkpoint", "--threads", "2", "--filter-per-client"}, 2, "not combined with --filter-per-client"},
		{[]string{"--filter-types", "checkpoint", "--threads", "2", "--join-clients", "3"}, 2, "not combined with"},
		{[]string{"--filter-types", "checkpoint", "--floor"}, 2, "not combined with"},
		{[]string{"-h"}, 0, "Usage: dashstream bench"},
	}
	for _, tc := range cases {
		var out, errOut bytes.Buffer
		code := runBench(context.Background(), tc.args, testEnv(nil, &out, &errOut, nil))
		if code != tc.code || !strings.Contains(errOut.String()+out.String(), tc.err) {
			t.Errorf("%v: exit %d, stderr %q", tc.args, code, errOut.String())
		}
	}
}

// TestBenchFlags: the subscription benchmark flags reach the run's
// configuration and the embedded gateway's environment.
func TestBenchFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	o, code := parseBenchFlags([]string{"--v2", "--format", "json", "--filter-index", "off", "--threads", "4", "--filter-per-client"},
		testEnv(nil, &out, &errOut, nil))
	if code >= 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	cfg := o.config(nil)
	if cfg.JoinClients != 0 || cfg.FullStateEvery != 100 {
		t.Fatalf("join defaults %+v", cfg)
	}
	if cfg.Format != "json" || !cfg.V2 || cfg.FilterIndex != "off" || cfg.Threads != 4 || !cfg.FilterPerClient {
		t.Fatalf("config %+v", cfg)
	}
	if env := embeddedEnv(o); env["WEBSOCKET_FILTER_INDEX"] != "off" {
		t.Fatalf("embedded env %v", env)
	}
	o, code = parseBenchFlags([]string{"--compare-v1", "--url", "ws://127.0.0.1:1/ws"}, testEnv(nil, &out, &errOut, nil))
	if code >= 0 || !o.compareV1 || o.format != "binary" || o.config(nil).FilterIndex != "" {
		t.Fatalf("exit %d, options %+v", code, o)
	}
	if env := embeddedEnv(o); env["WEBSOCKET_FILTER_INDEX"] != "on" {
		t.Fatalf("embedded env %v", env)
	}
	o, code = parseBenchFlags([]string{"--v2", "--threads", "3", "--join-clients", "7", "--full-state-every", "20", "--clients", "5"},
		testEnv(nil, &out, &errOut, nil))
	if cfg := o.config(nil); code >= 0 || cfg.JoinClients != 7 || cfg.FullStateEvery != 20 || cfg.Threads != 3 {
		t.Fatalf("exit %d, config %+v", code, cfg)
	}
	if env := embeddedEnv(o); env["WEBSOCKET_MAX_CONNECTIONS_PER_IP"] != "22" {
		t.Fatalf("connections per IP %v, want clients + join clients + 10", env["WEBSOCKET_MAX_CONNECTIONS_PER_IP"])
	}
	o, code = parseBenchFlags([]string{"--v2", "--filter-types", "checkpoint, event", "--full-state-every", "20", "--filter-index", "off"},
		testEnv(nil, &out, &errOut, nil))
	if cfg := o.config(nil); code >= 0 || !slices.Equal(cfg.FilterTypes, []string{"checkpoint", "event"}) || cfg.FullStateEvery != 20 || cfg.FilterIndex != "off" {
		t.Fatalf("exit %d, config %+v", code, cfg)
	}
	if env := embeddedEnv(o); env["WEBSOCKET_FILTER_INDEX"] != "off" {
		t.Fatalf("embedded env %v", env)
	}
}

// TestBenchFilterTypes runs a small types-only subscription benchmark
// against a gateway embedded in process, with its indexes and scanning
// (--filter-index off): every client gets exactly the checkpoints.
func TestBenchFilterTypes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gateway")
	}
	for _, index := range []string{"on", "off"} {
		var out, errOut bytes.Buffer
		code := runBench(t.Context(), []string{"--in-process", "--v2", "--clients", "10", "--threads", "4", "--filter-types", "checkpoint",
			"--full-state-every", "10", "--rate", "200", "--size", "200", "--duration", "1500ms", "--warmup", "300ms",
			"--grace", "5s", "--filter-index", index, "--json", "--quiet"}, testEnv(nil, &out, &errOut, nil))
		if code != 0 {
			t.Fatalf("index %s: exit %d: %s", index, code, errOut.String())
		}
		var res struct {
			Lost, Duplicated, Foreign, ClientErrors int64
			OutOfOrder                              int64    `json:"out_of_order"`
			Delivered                               int64    `json:"delivered_total"`
			Rate                                    float64  `json:"rate_produced"`
			Duration                                float64  `json:"duration_s"`
			FilterTypes                             []string `json:"filter_types"`
			FilterIndex                             string   `json:"filter_index"`
			FullStateEvery                          int      `json:"full_state_every"`
		}
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("bad JSON %q: %v", out.String(), err)
		}
		t.Logf("index %s: %s", index, out.String())
		if res.Lost != 0 || res.Duplicated != 0 || res.Foreign != 0 || res.OutOfOrder != 0 || res.ClientErrors != 0 {
			t.Fatalf("index %s: inexact: %s", index, out.String())
		}
		// A tenth of the records are checkpoints: about 10 clients × 30.
		if all := 10 * int64(res.Rate*res.Duration); res.Delivered == 0 || res.Delivered*5 > all || res.Delivered*20 < all {
			t.Fatalf("index %s: delivered %d of %d unfiltered deliveries", index, res.Delivered, all)
		}
		if res.FilterIndex != index || !slices.Equal(res.FilterTypes, []string{"checkpoint"}) || res.FullStateEvery != 10 {
			t.Fatalf("index %s: result %s", index, out.String())
		}
	}
}
