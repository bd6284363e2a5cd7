package bench

import (
	"fmt"
	"io"
	"strings"
)

// WriteText prints the result for a human.
func (r *Result) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, `dashstream bench (%s): %d clients, %d partitions, %d B records, %.0fs measured after %.0fs warmup
  protocol    %s
  produced    %.0f rec/s (target %d), %d records in total, %d produce errors
  delivered   %d records in the window, %.0f rec/s over all clients
  latency     p50 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.3f ms
  exactness   lost %d  duplicated %d  out of order %d  foreign %d  gap frames %d  client errors %d
`, r.Mode, r.Clients, r.Partitions, r.Size, r.DurationS, r.WarmupS, r.protocol(),
		r.RateProduced, r.RateTarget, r.Produced, r.ProduceErrors,
		r.DeliveredTotal, r.DeliveredPerSec,
		r.LatencyMs.P50, r.LatencyMs.P99, r.LatencyMs.P999, r.LatencyMs.Max,
		r.Lost, r.Duplicated, r.OutOfOrder, r.Foreign, r.GapFrames, r.ClientErrors)
	if err != nil {
		return err
	}
	r.writeGateway(w)
	r.writeMemory(w)
	if r.FirstError != "" {
		fmt.Fprintf(w, "  first error %s\n", r.FirstError)
	}
	_, err = fmt.Fprintf(w, "  system      %s, %d CPUs\n", r.GoVersion, r.CPUs)
	return err
}

// protocol describes what the clients spoke and followed.
func (r *Result) protocol() string {
	s := "v1"
	switch {
	case r.SSE:
		s = "SSE (base64 records)"
	case r.V2 && r.Format == "json":
		s = "v2 JSON records"
	case r.V2:
		s = "v2"
	}
	switch {
	case len(r.FilterTypes) > 0:
		runs := "one run per partition"
		if r.Threads > 0 {
			runs = fmt.Sprintf("%d runs", r.Threads)
		}
		s += fmt.Sprintf(", %s (a Checkpoint every %d records), every client filtered to types %s",
			runs, r.FullStateEvery, strings.Join(r.FilterTypes, ","))
	case r.Threads > 0 && r.FilterPerClient:
		s += fmt.Sprintf(", %d threads, each client filtered to one", r.Threads)
	case r.Threads > 0:
		s += fmt.Sprintf(", %d threads, unfiltered", r.Threads)
	default:
		s += ", one thread per partition, unfiltered"
	}
	if r.FilterIndex == "off" {
		s += ", filter index off (scan)"
	}
	return s
}

// writeGateway prints the gateway's CPU and JSON encodes over the window.
func (r *Result) writeGateway(w io.Writer) {
	if r.GatewayCPUCores != nil {
		note := ""
		if r.CPUIncludesLoad {
			note = " (gateway and load generator together)"
		}
		per := 0.0
		if r.CPUMicrosPerDelivery != nil {
			per = *r.CPUMicrosPerDelivery
		}
		fmt.Fprintf(w, "  cpu         gateway %.3f cores, %.2f µs per delivery%s\n", *r.GatewayCPUCores, per, note)
	}
	if r.LoadCPUCores != nil {
		fmt.Fprintf(w, "  cpu         load generator (this process) %.3f cores\n", *r.LoadCPUCores)
	}
	if j := r.Join; j != nil {
		fmt.Fprintf(w, "  join        %d clients at once over %d runs: first full state p50 %.3f ms  p99 %.3f ms  max %.3f ms, %d failed, burst %.0f ms\n",
			j.Clients, j.Runs, j.FirstFullMs.P50, j.FirstFullMs.P99, j.FirstFullMs.Max, j.Failed, j.BurstMs)
		fmt.Fprintf(w, "  live p99    %.3f ms before the burst, %.3f ms during it\n", j.LiveP99BeforeMs, j.LiveP99DuringMs)
		if j.FirstError != "" {
			fmt.Fprintf(w, "  join error  %s\n", j.FirstError)
		}
	}
	if r.Format == "json" {
		if r.JSONEncodesPerSec != nil {
			fmt.Fprintf(w, "  json        %.0f encodes/s for %.0f records/s produced\n", *r.JSONEncodesPerSec, r.RateProduced)
		} else {
			fmt.Fprintf(w, "  json        encodes/s n/a (%s)\n", r.JSONEncodesError)
		}
		fmt.Fprintf(w, "  json        %d record frames read by the scanner, %d by encoding/json\n", r.JSONScanned, r.JSONFullDecodes)
	}
}

func (r *Result) writeMemory(w io.Writer) {
	if r.ProcessRSSBytes != nil {
		fmt.Fprintf(w, "  memory      process RSS %s (gateway and load generator together)\n", mib(*r.ProcessRSSBytes))
	}
	if r.ServerRSSBytes != nil {
		fmt.Fprintf(w, "  memory      server RSS %s\n", mib(*r.ServerRSSBytes))
	}
	if r.RSSPerIdleConnBytes != nil {
		fmt.Fprintf(w, "  idle conn   %.1f KiB RSS each (%d idle connections)\n", float64(*r.RSSPerIdleConnBytes)/1024, r.IdleClients)
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
