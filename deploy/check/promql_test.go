package check

import (
	"reflect"
	"testing"
)

func TestMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`rate(websocket_kafka_messages_total{status="success"}[5m])`, []string{"websocket_kafka_messages_total"}},
		{`histogram_quantile(0.99, sum by (le, stage) (rate(websocket_e2e_latency_ms_bucket{job=~"$job", instance=~"$instance"}[$__rate_interval])))`,
			[]string{"websocket_e2e_latency_ms_bucket"}},
		{"sum by (job, instance) (websocket_kafka_consumer_lag) > 1000\nand on (job, instance) sum by (job, instance) (deriv(websocket_kafka_consumer_lag[10m])) > 0",
			[]string{"websocket_kafka_consumer_lag"}},
		{`process_open_fds / process_max_fds > 0.8e0`, []string{"process_max_fds", "process_open_fds"}},
		{`changes(kube_pod_status_ready{condition="true", pod=~"a(b)c"}[15m]) > 4`, []string{"kube_pod_status_ready"}},
		{`sum without (partition) (rate(a:b:c[1m])) * 600 > bool 20 unless up offset 5m`, []string{"a:b:c", "up"}},
	}
	for _, tc := range tests {
		if got := metricNames(tc.expr); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("metricNames(%q) = %v, want %v", tc.expr, got, tc.want)
		}
	}
}
